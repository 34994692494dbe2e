// cache.test.mjs - issue #19: the response cache and the audit log in `inferno serve`.
//
// Cache: which requests hit, miss or bypass (X-Inferno-Cache) for every field that can change
// the output and for those that cannot; a hit is the original response byte for byte apart
// from id and created, streamed or not; 8 identical concurrent requests run the model once
// (inferno_tasks_total); a replaced model file and a corrupted entry are misses.
// Audit: one record per request, written before the response (kill -9 right after the last
// acknowledged request loses none), `inferno audit verify` accepts the log, an encrypted log
// holds no prompt text.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, postJSON, parseMetrics, metricSum, readSSE, syntheticModel, STORIES, BIN, SHARED } from './harness.mjs';

const have = fs.existsSync(STORIES);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-cache-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// id and created are fresh on every response; everything else must be as it was
const normalize = (text) => text.replace(/"id":"[^"]*"/g, '"id":"X"').replace(/"created":\d+/g, '"created":0');

async function metrics(srv) {
  const r = await fetch(`${srv.url}/metrics`);
  return parseMetrics(await r.text());
}

// `inferno serve` on stories260K without the harness's readiness probe.
async function startRaw(args) {
  const proc = spawn(BIN, ['serve', '-m', STORIES, '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on (http:\/\/.+:\d+)/); if (m) resolve(m[1]); });
    proc.on('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
  return {
    url, base: `${url}/v1`, log: () => err,
    async stop() { proc.kill('SIGTERM'); return new Promise((r) => proc.once('exit', (c) => r(c))); },
  };
}

function cli(args, env = {}) {
  return execFileSync(BIN, args, { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('response cache', { skip: !have && 'no stories260K model' }, () => {
  let srv;
  const dir = path.join(tmp, 'cache-a');
  before(async () => {
    srv = await startServer({ args: ['--cache', '--set', `cache.dir=${dir}`, '--parallel', '4'] });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  const base = { prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
  const comp = (body) => postJSON(`${srv.base}/completions`, body);
  const state = (r) => r.headers.get('x-inferno-cache');

  test('temperature 0: miss, then a hit identical apart from id and created', async () => {
    const a = await comp(base);
    assert.equal(a.status, 200);
    assert.equal(state(a), 'miss');
    const b = await comp(base);
    assert.equal(state(b), 'hit');
    assert.equal(normalize(b.text), normalize(a.text));
    assert.notEqual(b.json.id, a.json.id);
  });

  test('fields that cannot change the output are not in the key', async () => {
    for (const extra of [{ user: 'someone' }, { stream: false }, { metadata: undefined }]) {
      const r = await comp({ ...base, ...extra });
      assert.equal(state(r), 'hit', JSON.stringify(extra));
    }
  });

  test('a streamed hit replays the same chunks as a live stream', async () => {
    const body = { ...base, max_tokens: 17, stream: true, stream_options: { include_usage: true } };
    const live = await fetch(`${srv.base}/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(live.headers.get('x-inferno-cache'), 'miss');
    const liveText = (await readSSE(live)).raw;
    const hit = await fetch(`${srv.base}/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(hit.headers.get('x-inferno-cache'), 'hit');
    const hitSSE = await readSSE(hit);
    assert.equal(normalize(hitSSE.raw), normalize(liveText));
    assert.ok(hitSSE.events.length > 5);
    const usage = JSON.parse(hitSSE.events[hitSSE.events.length - 2].data).usage;
    assert.equal(usage.completion_tokens, 17);
    // the same request unstreamed is a hit too (stream is not in the key), with the same text
    const plain = await comp({ ...base, max_tokens: 17 });
    assert.equal(state(plain), 'hit');
    const streamed = hitSSE.events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data))
      .flatMap((c) => c.choices.map((ch) => ch.text)).join('');
    assert.equal(plain.json.choices[0].text, streamed);
  });

  test('every field that changes the output changes the key', async () => {
    const variants = [
      { max_tokens: 25 }, { stop: ['the'] }, { logprobs: 2 }, { echo: true }, { n: 2 },
      { presence_penalty: 0.5 }, { frequency_penalty: 0.5 }, { logit_bias: { 50: 5 } },
      { prompt: 'Once upon a tim' }, { temperature: 0.7, seed: 1 }, { temperature: 0.7, seed: 2 },
      { temperature: 0.7, seed: 1, top_p: 0.5 }, { temperature: 0.7, seed: 1, top_k: 5 },
      { response_format: { type: 'json_object' } },
    ];
    for (const v of variants) {
      const r = await comp({ ...base, ...v });
      assert.equal(r.status, 200, `${JSON.stringify(v)}: ${r.text}`);
      assert.equal(state(r), 'miss', JSON.stringify(v));
      const again = await comp({ ...base, ...v });
      assert.equal(state(again), 'hit', `${JSON.stringify(v)} again`);
      assert.equal(normalize(again.text), normalize(r.text));
    }
  });

  test('sampling without a seed bypasses the cache', async () => {
    for (const v of [{ temperature: 0.8 }, { temperature: 0.8, n: 2 }, { temperature: 0.8, logprobs: 1 }]) {
      const r = await comp({ ...base, ...v });
      assert.equal(r.status, 200);
      assert.equal(state(r), 'bypass', JSON.stringify(v));
    }
  });

  test('chat: the key is the prompt after templating', async () => {
    const chat = (messages, extra = {}) => postJSON(`${srv.base}/chat/completions`, { messages, max_tokens: 12, temperature: 0, ...extra });
    const m = [{ role: 'user', content: 'Tell me a story' }];
    assert.equal(state(await chat(m)), 'miss');
    const h = await chat(m);
    assert.equal(state(h), 'hit');
    assert.equal(state(await chat(m, { user: 'other', stream_options: undefined })), 'hit');
    assert.equal(state(await chat([{ role: 'system', content: 'Be brief.' }, ...m])), 'miss');
    assert.equal(state(await chat([{ role: 'user', content: 'Tell me a story!' }])), 'miss');
    assert.equal(h.json.choices[0].message.role, 'assistant');
  });

  test('8 identical concurrent requests run the model once', async () => {
    const body = { ...base, prompt: 'The little dog', max_tokens: 64 };
    const m0 = await metrics(srv);
    const rs = await Promise.all(Array.from({ length: 8 }, () => comp(body)));
    const m1 = await metrics(srv);
    for (const r of rs) assert.equal(r.status, 200);
    const states = rs.map(state).sort();
    assert.deepEqual(states, ['hit', 'hit', 'hit', 'hit', 'hit', 'hit', 'hit', 'miss']);
    assert.equal(metricSum(m1, 'inferno_tasks_total') - metricSum(m0, 'inferno_tasks_total'), 1);
    for (const r of rs) assert.equal(normalize(r.text), normalize(rs[0].text));
    assert.equal(m1.get('inferno_cache_hits_total') - m0.get('inferno_cache_hits_total'), 7);
  });

  test('metrics count hits, misses, bypasses', async () => {
    const m = await metrics(srv);
    for (const n of ['inferno_cache_hits_total', 'inferno_cache_misses_total', 'inferno_cache_bypasses_total',
      'inferno_cache_stored_bytes_total', 'inferno_cache_evictions_total']) assert.ok(m.has(n), n);
    assert.ok(m.get('inferno_cache_hits_total') >= 10);
    assert.ok(m.get('inferno_cache_bypasses_total') >= 3);
  });

  test('cache CLI: stats, list, verify', () => {
    const env = { INFERNO_CACHE_DIR: dir };
    const st = JSON.parse(cli(['cache', 'stats', '--json'], env));
    assert.ok(st.entries >= 10, JSON.stringify(st));
    const list = JSON.parse(cli(['cache', 'list', '--json', '--model', 'stories260K'], env));
    assert.equal(list.length, st.entries);
    assert.match(cli(['cache', 'verify'], env), /consistent: \d+ entries checked/);
  });
});

describe('cache faults', { skip: !have && 'no stories260K model' }, () => {
  test('a corrupted entry is a miss, never a wrong answer', async () => {
    const dir = path.join(tmp, 'cache-b');
    // no memory tier: every hit reads the entry file
    const srv = await startServer({ args: ['--cache', '--set', `cache.dir=${dir}`, '--set', 'cache.memory_bytes=0'] });
    try {
      const body = { prompt: 'A cat', max_tokens: 20, temperature: 0 };
      const a = await postJSON(`${srv.base}/completions`, body);
      assert.equal(a.headers.get('x-inferno-cache'), 'miss');
      assert.equal((await postJSON(`${srv.base}/completions`, body)).headers.get('x-inferno-cache'), 'hit');
      const files = [];
      const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (p.endsWith('.zst')) files.push(p); } };
      walk(path.join(dir, 'entries'));
      assert.equal(files.length, 1);
      const buf = fs.readFileSync(files[0]);
      buf[buf.length - 3] ^= 0x55;
      fs.writeFileSync(files[0], buf);
      const b = await postJSON(`${srv.base}/completions`, body);
      assert.equal(b.status, 200);
      assert.equal(b.headers.get('x-inferno-cache'), 'miss');
      // computed again: the same text (usage may count a slot's cached prefix now)
      assert.deepEqual(b.json.choices, a.json.choices);
      assert.match(srv.log(), /entry dropped, answered as a miss/);
      assert.equal((await postJSON(`${srv.base}/completions`, body)).headers.get('x-inferno-cache'), 'hit');
      const m = parseMetrics(await (await fetch(`${srv.url}/metrics`)).text());
      assert.equal(m.get('inferno_cache_corrupt_total'), 1);
    } finally {
      assert.equal(await srv.stop(), 0);
    }
  });

  test('a replaced model file is a miss', async () => {
    const syn = syntheticModel({ name: 'replaced' });
    if (!syn) return;
    const dir = path.join(tmp, 'cache-c');
    const model = path.join(tmp, 'model.gguf');
    fs.copyFileSync(STORIES, model);
    const body = { model: 'model', prompt: 'Once', max_tokens: 8, temperature: 0 };
    let srv = await startServer({ model, args: ['--cache', '--set', `cache.dir=${dir}`] });
    assert.equal((await postJSON(`${srv.base}/completions`, body)).headers.get('x-inferno-cache'), 'miss');
    assert.equal((await postJSON(`${srv.base}/completions`, body)).headers.get('x-inferno-cache'), 'hit');
    assert.equal(await srv.stop(), 0);
    // the same file again (a restart): still a hit
    srv = await startServer({ model, args: ['--cache', '--set', `cache.dir=${dir}`] });
    assert.equal((await postJSON(`${srv.base}/completions`, body)).headers.get('x-inferno-cache'), 'hit');
    assert.equal(await srv.stop(), 0);
    // another model under the same path and name
    fs.copyFileSync(syn, model);
    srv = await startServer({ model, args: ['--cache', '--set', `cache.dir=${dir}`] });
    assert.equal((await postJSON(`${srv.base}/completions`, body)).headers.get('x-inferno-cache'), 'miss');
    assert.equal(await srv.stop(), 0);
  });
});

describe('audit log', { skip: !have && 'no stories260K model' }, () => {
  test('one record per request; kill -9 loses no acknowledged one; verify accepts the log', async () => {
    const dir = path.join(tmp, 'audit-a');
    const srv = await startServer({ args: ['--audit', '--set', `audit.dir=${dir}`, '--set', 'audit.fsync=batch', '--api-key', 'sk-test-1'] });
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const r = await postJSON(`${srv.base}/completions`, { prompt: `Story ${i}`, max_tokens: 4, temperature: 0 }, { Authorization: 'Bearer sk-test-1' });
      assert.equal(r.status, 200);
      ids.push(r.headers.get('x-request-id'));
    }
    // a stream: its record is written before its [DONE], so it is there even if the server dies
    // the moment the client has read the end
    const st = await fetch(`${srv.base}/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-test-1' },
      body: JSON.stringify({ prompt: 'Streamed', max_tokens: 5, temperature: 0, stream: true }) });
    assert.equal(st.status, 200);
    assert.match((await readSSE(st)).raw, /data: \[DONE\]/);
    ids.push(st.headers.get('x-request-id'));
    const bad = await postJSON(`${srv.base}/completions`, { prompt: 'x' }, { Authorization: 'Bearer wrong' });
    assert.equal(bad.status, 401);
    ids.push(bad.headers.get('x-request-id'));
    srv.proc.kill('SIGKILL');
    await new Promise((r) => srv.proc.once('exit', r));
    const env = { INFERNO_AUDIT_DIR: dir };
    // 8: the harness's GET /health, then ours
    assert.match(cli(['audit', 'verify'], env), /^intact: 9 records/);
    const all = cli(['audit', 'query', '--json'], env).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(all[0].route, '/health');
    const recs = all.slice(1);
    assert.deepEqual(recs.map((r) => r.request_id), ids);
    const ok = recs[0];
    assert.equal(ok.route, '/v1/completions');
    assert.equal(ok.status, 200);
    assert.equal(ok.model, 'stories260K');
    assert.equal(ok.prompt_tokens > 0 && ok.completion_tokens === 4, true);
    assert.match(ok.key_id, /^key-[0-9a-f]{12}$/);
    assert.ok(!JSON.stringify(recs).includes('sk-test-1'), 'the API key itself is never written');
    assert.equal(recs[6].params.stream, true);
    assert.equal(recs[6].completion_tokens, 5);
    assert.equal(recs[6].status, 200);
    assert.equal(recs[7].status, 401);
    assert.equal(recs[7].key_id, null);
    const only401 = cli(['audit', 'query', '--json', '--status', '4xx'], env).trim().split('\n');
    assert.equal(only401.length, 1);
    const csv = cli(['audit', 'export', '--format', 'csv'], env).trim().split('\n');
    assert.equal(csv.length, 10);
    assert.match(csv[0], /^seq,ts,type,request_id/);
  });

  test('an encrypted log holds no prompt text; verify needs the right key', async () => {
    const dir = path.join(tmp, 'audit-b');
    const key = 'a1'.repeat(32);
    const keyFile = path.join(tmp, 'audit.key');
    fs.writeFileSync(keyFile, key + '\n');
    const srv = await startServer({
      args: ['--audit', '--set', `audit.dir=${dir}`, '--set', `audit.key_file=${keyFile}`, '--set', 'audit.include_content=true'],
    });
    const secret = 'ZEBRA-UNICORN-PROMPT';
    const r = await postJSON(`${srv.base}/completions`, { prompt: secret, max_tokens: 4, temperature: 0 });
    assert.equal(r.status, 200);
    assert.equal(await srv.stop(), 0);
    for (const f of fs.readdirSync(dir)) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      assert.ok(!text.includes(secret) && !text.includes('completions'), `${f} reveals content`);
    }
    const env = { INFERNO_AUDIT_DIR: dir };
    assert.match(cli(['audit', 'verify', '--key-file', keyFile], env), /^intact: .*signature checked/);
    const recs = cli(['audit', 'query', '--json', '--route', '/v1/completions', '--key-file', keyFile], env).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(recs.length, 1);
    assert.ok(recs[0].request.prompt === secret, 'include_content keeps the request');
    assert.equal(recs[0].response.usage.completion_tokens, 4);
    const wrong = path.join(tmp, 'wrong.key');
    fs.writeFileSync(wrong, 'b2'.repeat(32));
    assert.throws(() => cli(['audit', 'verify', '--key-file', wrong], env), (e) => e.status === 1 && /audit-\d{6}-\d{8}\.jsonl:1: .*wrong key/.test(e.stdout));
  });

  test('audit.required: a request whose record cannot be written fails', async () => {
    // the log's file is /dev/full: every write fails with ENOSPC
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    for (const required of [true, false]) {
      const dir = path.join(tmp, `audit-full-${required}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.symlinkSync('/dev/full', path.join(dir, `audit-000001-${day}.jsonl`));
      // (the harness's own /health check would fail with audit.required: start it by hand)
      const srv = await startRaw(['--audit', '--set', `audit.dir=${dir}`, '--set', `audit.required=${required}`]);
      const r = await postJSON(`${srv.base}/completions`, { prompt: 'x', max_tokens: 2, temperature: 0 });
      if (required) {
        assert.equal(r.status, 503);
        assert.equal(r.json.error.code, 'audit_unavailable');
        const st = await fetch(`${srv.base}/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ prompt: 'x', max_tokens: 2, temperature: 0, stream: true }) });
        const sse = await readSSE(st);
        assert.ok(sse.events.some((e) => e.event === 'error' && /audit_unavailable/.test(e.data)), sse.raw);
        assert.ok(!/\[DONE\]/.test(sse.raw));
      } else {
        assert.equal(r.status, 200);
      }
      assert.match(srv.log(), /audit record not written/);
      assert.equal(await srv.stop(), 0);
    }
  });
});
