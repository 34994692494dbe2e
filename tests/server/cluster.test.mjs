// cluster.test.mjs - replicas behind nginx (issue #21), started for real: two `inferno serve`
// replicas of the same model and Debian's nginx on tests/cluster/nginx.conf.in (the file
// docs/deploy.md gives), in a temporary directory on free ports. Checked through nginx: the
// official openai client (plain and SSE), the ollama client (NDJSON), WebSocket, streams not
// buffered, least-connections spreading load over both replicas, affinity by X-Session-Id, and a
// replica killed with SIGKILL and restarted. Skips (with the reason) where nginx is absent.
// (Streams are unbuffered twice over: the replicas send X-Accel-Buffering: no, and the
// configuration turns proxy buffering off; the test checks what arrives when.)
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import WebSocket from 'ws';
import { startServer, postJSON, sleep, STORIES } from './harness.mjs';
import { NGINX, startNginx, routeCount, accessLog } from './cluster_harness.mjs';

const skip = NGINX ? false : 'nginx is not installed (apt-get install nginx-light)';

const replicaArgs = (model) => ['-m', model, '--parallel', '4', '--ctx', '8192', '--deterministic', 'auto'];

let dir, slowModel, R = [], ngx, front, frontAff;

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-cluster-'));
  // a model slow enough (~50 tok/s here) that a stream's tokens arrive over a second or more
  slowModel = path.join(dir, 'syn-slow.gguf');
  execFileSync(process.env.INFERNO_GEN, ['--arch', 'llama', '--vocab', STORIES, '--out', slowModel, '--shape', 'tiny',
    '--ctx', '8192', '--n-embd', '512', '--n-layer', '8', '--n-ff', '1536', '--n-head', '8', '--n-head-kv', '8'], { stdio: 'pipe' });
  R = [await startServer({ args: replicaArgs(slowModel) }), await startServer({ args: replicaArgs(slowModel) })];
  ngx = await startNginx(dir, R.map((r) => Number(new URL(r.url).port)));
  front = ngx.url;
  frontAff = ngx.urlAff;
});

after(async () => {
  if (ngx) { ngx.proc.kill('SIGQUIT'); await new Promise((r) => ngx.proc.once('exit', r)); }
  for (const r of R) if (r) await r.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const CHAT = { model: 'syn-slow', messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 24, temperature: 0 };

describe('through nginx', { skip }, () => {
  test('/health, and the openai client: a chat equal to a replica answering directly', async () => {
    const h = await fetch(`${front}/health`);
    assert.equal(h.status, 200);
    assert.equal((await h.json()).status, 'ok');
    const client = new OpenAI({ baseURL: `${front}/v1`, apiKey: 'none' });
    const viaNginx = await client.chat.completions.create(CHAT);
    const direct = await postJSON(`${R[0].base}/chat/completions`, CHAT);
    assert.equal(viaNginx.choices[0].message.content, direct.json.choices[0].message.content);
    assert.equal(viaNginx.usage.completion_tokens, direct.json.usage.completion_tokens);
  });

  test('SSE is not buffered: the first chunk arrives long before the last', async () => {
    const client = new OpenAI({ baseURL: `${front}/v1`, apiKey: 'none' });
    const t0 = Date.now();
    const times = [];
    let text = '';
    const stream = await client.chat.completions.create({ ...CHAT, max_tokens: 64, stream: true });
    for await (const ch of stream) {
      times.push(Date.now() - t0);
      text += ch.choices[0]?.delta?.content ?? '';
    }
    const direct = await postJSON(`${R[1].base}/chat/completions`, { ...CHAT, max_tokens: 64 });
    assert.equal(text, direct.json.choices[0].message.content);
    assert.ok(times.length > 10, `${times.length} chunks`);
    const span = times[times.length - 1] - times[0];
    // buffered by a proxy, every chunk would arrive together at the end
    assert.ok(span > 300, `chunks arrived within ${span} ms of each other (${times.length} chunks, ${times[times.length - 1]} ms in all)`);
  });

  test('NDJSON (the ollama client) streams through nginx too', async () => {
    const ol = new Ollama({ host: front });
    const t0 = Date.now();
    const times = [];
    let text = '';
    const stream = await ol.chat({ model: 'syn-slow', messages: CHAT.messages, stream: true, options: { temperature: 0, num_predict: 64 } });
    for await (const part of stream) {
      times.push(Date.now() - t0);
      text += part.message?.content ?? '';
    }
    assert.ok(text.length > 0);
    assert.ok(times.length > 10 && times[times.length - 1] - times[0] > 300, `NDJSON lines arrived at ${times.slice(0, 3)}…${times.slice(-2)} ms`);
  });

  test('WebSocket: /v1/ws upgrades through nginx and streams a chat equal to HTTP', async () => {
    const ws = await new Promise((resolve, reject) => {
      const w = new WebSocket(front.replace(/^http/, 'ws') + '/v1/ws');
      w.once('open', () => resolve(w));
      w.once('error', reject);
      w.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    const chunks = [];
    const end = await new Promise((resolve) => {
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.type === 'chunk') chunks.push(m.data);
        else resolve(m);
      });
      ws.send(JSON.stringify({ id: 'w1', type: 'chat.completions', body: CHAT }));
    });
    ws.close(1000);
    assert.equal(end.type, 'done', JSON.stringify(end));
    const direct = await postJSON(`${R[0].base}/chat/completions`, CHAT);
    assert.equal(chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''), direct.json.choices[0].message.content);
  });

  test('least connections: 8 concurrent chats are served by both replicas', async () => {
    const before0 = await routeCount(R[0], '/v1/chat/completions');
    const before1 = await routeCount(R[1], '/v1/chat/completions');
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      postJSON(`${front}/v1/chat/completions`, { ...CHAT, messages: [{ role: 'user', content: `Story ${i}` }], max_tokens: 32 })));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    const d0 = (await routeCount(R[0], '/v1/chat/completions')) - before0;
    const d1 = (await routeCount(R[1], '/v1/chat/completions')) - before1;
    assert.equal(d0 + d1, 8);
    assert.ok(d0 >= 2 && d1 >= 2, `replica 0 served ${d0}, replica 1 served ${d1}`);
  });

  test('affinity: every turn of a conversation with one X-Session-Id goes to the same replica', async () => {
    const sessions = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
    for (let turn = 0; turn < 3; turn++) {
      await Promise.all(sessions.map((s) => postJSON(`${frontAff}/v1/chat/completions`,
        { ...CHAT, messages: [{ role: 'user', content: `${s} turn ${turn}` }], max_tokens: 4 }, { 'X-Session-Id': s })));
    }
    const bySession = new Map();
    for (const line of accessLog(dir)) {
      const m = line.match(/upstream=(\S+) session="([^"]*)"/);
      if (!m || !sessions.includes(m[2])) continue;
      if (!bySession.has(m[2])) bySession.set(m[2], new Set());
      bySession.get(m[2]).add(m[1]);
    }
    assert.equal(bySession.size, sessions.length);
    for (const [s, ups] of bySession) assert.equal(ups.size, 1, `session ${s} went to ${[...ups]}`);
    // and the sessions are spread over both replicas
    const used = new Set([...bySession.values()].map((u) => [...u][0]));
    assert.equal(used.size, 2, `all sessions on ${[...used]}`);
  });

  test('a replica killed with SIGKILL: requests go to the other; restarted, it serves again', async () => {
    const port = new URL(R[1].url).port;
    R[1].proc.kill('SIGKILL');
    await new Promise((r) => (R[1].proc.exitCode !== null || R[1].proc.signalCode !== null ? r() : R[1].proc.once('exit', r)));
    const rs = [];
    for (let i = 0; i < 6; i++) rs.push(await postJSON(`${front}/v1/chat/completions`, { ...CHAT, max_tokens: 4 }));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    // restart on the same port (nginx's upstream names it)
    R[1] = await startServer({ args: [...replicaArgs(slowModel), '--port', port] });
    // after fail_timeout (2 s) nginx tries the replica again; rounds of concurrent requests
    // until it serves some (a loaded machine may take a few rounds)
    const before1 = await routeCount(R[1], '/v1/chat/completions');
    let served = 0;
    for (let round = 0; round < 15 && served === 0; round++) {
      await sleep(1000);
      const rs = await Promise.all(Array.from({ length: 8 }, () => postJSON(`${front}/v1/chat/completions`, { ...CHAT, max_tokens: 16 })));
      for (const r of rs) assert.equal(r.status, 200, r.text);
      served = (await routeCount(R[1], '/v1/chat/completions')) - before1;
    }
    assert.ok(served > 0, 'the restarted replica got no requests in 15 rounds');
  });
});
