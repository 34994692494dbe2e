// websocket.test.mjs - streaming over WebSocket on GET /v1/ws (issue #22), driven by the `ws` npm
// client (pinned in package.json) and, for malformed frames, by raw TCP with frames built here
// from RFC 6455 section 5. References: the same requests over HTTP (temperature 0, batch-invariant
// passes), /health for slots, the RFC's close codes.
//
// Instances: A (stories260K, 8 slots, max_body_bytes 65536) for streaming, multiplexing, cancel
// and bad frames; B (an API key) for authentication and origins; C (one long slot,
// ws_max_pending_bytes 16 KiB) for a client that stops reading.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { startServer, syntheticModel, postJSON, sleep, SLOW } from './harness.mjs';

const KEY = 'ws-test-key-123';
let A, B, C, syn;

before(async () => {
  syn = syntheticModel({ ctx: 8192, name: 'syn-ws' });
  A = await startServer({
    args: ['--parallel', '8', '--ctx', '8192', '--deterministic', 'auto', '--set', 'server.max_body_bytes=65536',
      ...(syn ? ['-m', syn] : [])],
  });
  B = await startServer({ args: ['--api-key', KEY] });
  C = await startServer({ args: ['--parallel', '1', '--ctx', '16384', '--set', 'server.ws_max_pending_bytes=16384'] });
});

after(async () => {
  if (A) assert.equal(await A.stop(), 0);
  if (B) assert.equal(await B.stop(), 0);
  if (C) assert.equal(await C.stop(), 0);
});

const wsURL = (srv) => srv.url.replace(/^http/, 'ws') + '/v1/ws';

function open(srv, opts = {}, protocols = undefined) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsURL(srv), protocols, opts);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

// Collect the messages of each request id until its done/error: Map id -> {chunks, end}.
function collector(ws) {
  const by = new Map();
  const waiters = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (!m.id) return;
    if (!by.has(m.id)) by.set(m.id, { chunks: [], end: null });
    const e = by.get(m.id);
    if (m.type === 'chunk') e.chunks.push(m.data);
    else { e.end = m; waiters.get(m.id)?.(e); }
  });
  return {
    by,
    wait: (id) => new Promise((resolve) => {
      const e = by.get(id);
      if (e?.end) resolve(e); else waiters.set(id, resolve);
    }),
  };
}

const chatText = (e) => e.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
const complText = (e) => e.chunks.map((c) => c.choices?.[0]?.text ?? '').join('');

describe('streaming', () => {
  test('the text assembled from chunks equals the HTTP response (temperature 0)', async () => {
    const ws = await open(A);
    const c = collector(ws);
    const chat = { model: 'stories260K', messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 24, temperature: 0 };
    const compl = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
    ws.send(JSON.stringify({ id: 'c1', type: 'chat.completions', body: chat }));
    ws.send(JSON.stringify({ id: 'p1', type: 'completions', body: compl }));
    ws.send(JSON.stringify({ id: 'e1', type: 'embeddings', body: { model: 'stories260K', input: 'A cat.' } }));
    const [a, b, e] = await Promise.all([c.wait('c1'), c.wait('p1'), c.wait('e1')]);
    const ha = await postJSON(`${A.base}/chat/completions`, chat);
    const hb = await postJSON(`${A.base}/completions`, compl);
    const he = await postJSON(`${A.base}/embeddings`, { model: 'stories260K', input: 'A cat.' });
    assert.equal(a.end.type, 'done');
    assert.equal(chatText(a), ha.json.choices[0].message.content);
    assert.equal(a.chunks[0].object, 'chat.completion.chunk');
    assert.equal(a.end.usage.completion_tokens, ha.json.usage.completion_tokens);
    assert.equal(complText(b), hb.json.choices[0].text);
    assert.equal(b.end.usage.prompt_tokens, hb.json.usage.prompt_tokens);
    assert.equal(e.end.type, 'done');
    assert.deepEqual(e.chunks[0].data[0].embedding, he.json.data[0].embedding);
    ws.close(1000);
  });

  test('8 concurrent requests multiplexed on one socket, each equal to its HTTP answer', async () => {
    const ws = await open(A);
    const c = collector(ws);
    const bodies = Array.from({ length: 8 }, (_, i) => ({ model: 'stories260K', prompt: `Story ${i}: once`, max_tokens: 20, temperature: 0 }));
    bodies.forEach((b, i) => ws.send(JSON.stringify({ id: `m${i}`, type: 'completions', body: b })));
    const res = await Promise.all(bodies.map((_, i) => c.wait(`m${i}`)));
    // interleaved: the messages of different ids arrived mixed, not one request after another
    for (let i = 0; i < 8; i++) {
      assert.equal(res[i].end.type, 'done', JSON.stringify(res[i].end));
      const h = await postJSON(`${A.base}/completions`, bodies[i]);
      assert.equal(complText(res[i]), h.json.choices[0].text, `request m${i}`);
    }
    ws.close(1000);
  });

  test('errors come as messages with the OpenAI error object; the socket stays open', async () => {
    const ws = await open(A);
    const c = collector(ws);
    ws.send(JSON.stringify({ id: 'x1', type: 'chat.completions', body: { model: 'nope', messages: [{ role: 'user', content: 'hi' }] } }));
    ws.send(JSON.stringify({ id: 'x2', type: 'chat.completions', body: { model: 'stories260K', messages: [{ role: 'user', content: 'hi' }], temperature: 'hot' } }));
    ws.send(JSON.stringify({ id: 'x3', type: 'teleport', body: {} }));
    const [a, b, d] = await Promise.all([c.wait('x1'), c.wait('x2'), c.wait('x3')]);
    assert.equal(a.end.type, 'error');
    assert.equal(a.end.error.code, 'model_not_found');
    assert.equal(b.end.error.param, 'temperature');
    assert.match(d.end.error.message, /unknown type/);
    ws.send(JSON.stringify({ id: 'x4', type: 'completions', body: { model: 'stories260K', prompt: 'a', max_tokens: 2 } }));
    assert.equal((await c.wait('x4')).end.type, 'done');
    ws.close(1000);
  });

  test('cancel stops generation and frees the slot at once', { skip: !syn }, async () => {
    const ws = await open(A);
    const c = collector(ws);
    let first;
    const got = new Promise((r) => { first = r; });
    ws.on('message', (d) => { if (JSON.parse(d.toString()).type === 'chunk') first(); });
    ws.send(JSON.stringify({ id: 'long', type: 'completions', body: { model: 'syn-ws', prompt: 'Once', max_tokens: 900, ignore_eos: true } }));
    await got;
    const busy = await (await fetch(`${A.url}/health`)).json();
    assert.ok(busy.slots_busy >= 1);
    const t = Date.now();
    ws.send(JSON.stringify({ id: 'long', type: 'cancel' }));
    const e = await c.wait('long');
    assert.equal(e.end.type, 'error');
    assert.equal(e.end.error.code, 'cancelled');
    let h;
    for (let i = 0; i < 50; i++) {
      h = await (await fetch(`${A.url}/health`)).json();
      if (h.slots_busy === 0) break;
      await sleep(20);
    }
    assert.equal(h.slots_busy, 0);
    assert.ok(Date.now() - t < 2000 * SLOW, `slot freed after ${Date.now() - t} ms`);
    assert.ok(e.chunks.length < 900);
    ws.close(1000);
  });

  test('closing the socket cancels its requests', { skip: !syn }, async () => {
    const ws = await open(A);
    ws.send(JSON.stringify({ id: 'g', type: 'completions', body: { model: 'syn-ws', prompt: 'Once', max_tokens: 900, ignore_eos: true } }));
    await new Promise((r) => ws.once('message', r));
    ws.terminate();
    let h;
    for (let i = 0; i < 100; i++) {
      h = await (await fetch(`${A.url}/health`)).json();
      if (h.slots_busy === 0) break;
      await sleep(20);
    }
    assert.equal(h.slots_busy, 0);
  });

  test('ping is answered with pong', async () => {
    const ws = await open(A);
    const pong = new Promise((r) => ws.once('pong', (d) => r(d.toString())));
    ws.ping('hello');
    assert.equal(await pong, 'hello');
    ws.close(1000);
  });
});

// ---- raw frames ---------------------------------------------------------------------------------

function frame({ fin = true, opcode = 1, payload = Buffer.alloc(0), mask = true, rsv = 0 }) {
  const len = payload.length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode)];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
  else { head.push(m | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255); }
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4];
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

// Handshake on a raw socket, send bytes, resolve with the server's close code (or null).
function rawSession(srv, bytes) {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname);
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => { s.destroy(); resolve(null); }, 5000 * SLOW);
    s.on('connect', () => s.write(`GET /v1/ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.subarray(0, i).toString();
        if (!head.startsWith('HTTP/1.1 101')) { clearTimeout(timer); s.destroy(); reject(new Error(head)); return; }
        const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${want.replace(/[+/]/g, '\\$&')}`, 'i'));
        upgraded = true;
        buf = buf.subarray(i + 4);
        s.write(bytes);
      }
      // server frames are unmasked: look for a close frame
      while (buf.length >= 2) {
        let len = buf[1] & 127, off = 2;
        if (len === 126) { len = buf.readUInt16BE(2); off = 4; } else if (len === 127) { len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) break;
        const op = buf[0] & 15;
        if (op === 8) { clearTimeout(timer); s.destroy(); resolve(len >= 2 ? buf.readUInt16BE(off) : 1005); return; }
        buf = buf.subarray(off + len);
      }
    });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(null); });
  });
}

describe('bad frames close the connection with the RFC\'s code; the server keeps serving', () => {
  const cases = [
    ['an unmasked client frame', () => frame({ payload: Buffer.from('{}'), mask: false }), 1002],
    ['an unknown opcode', () => frame({ opcode: 3, payload: Buffer.from('x') }), 1002],
    ['a fragmented control frame', () => frame({ opcode: 9, fin: false, payload: Buffer.from('p') }), 1002],
    ['reserved bits without an extension', () => frame({ rsv: 4, payload: Buffer.from('{}') }), 1002],
    ['invalid UTF-8 in a text message', () => frame({ payload: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) }), 1007],
    ['a message over server.max_body_bytes', () => frame({ payload: Buffer.alloc(70000, 0x61) }), 1009],
    ['a binary message', () => frame({ opcode: 2, payload: Buffer.from([1, 2, 3]) }), 1003],
  ];
  for (const [name, make, code] of cases) {
    test(name, async () => {
      assert.equal(await rawSession(A, make()), code);
      const h = await fetch(`${A.url}/health`);
      assert.equal(h.status, 200);
    });
  }

  test('a message split over continuation frames is one message', async () => {
    const ws = await open(A);
    const c = collector(ws);
    const text = JSON.stringify({ id: 'f1', type: 'completions', body: { model: 'stories260K', prompt: 'a', max_tokens: 2 } });
    // ws's fragmenting send: fin false, then the rest
    ws.send(text.slice(0, 10), { fin: false });
    ws.send(text.slice(10), { fin: true });
    assert.equal((await c.wait('f1')).end.type, 'done');
    ws.close(1000);
  });
});

describe('authentication and origins', () => {
  const body = { model: 'stories260K', prompt: 'a', max_tokens: 2 };

  test('the Authorization header at the upgrade', async () => {
    await assert.rejects(open(B, { headers: { Authorization: 'Bearer wrong' } }), (e) => e.status === 401);
    const ws = await open(B, { headers: { Authorization: `Bearer ${KEY}` } });
    const c = collector(ws);
    ws.send(JSON.stringify({ id: 'a', type: 'completions', body }));
    assert.equal((await c.wait('a')).end.type, 'done');
    ws.close(1000);
  });

  test('a bearer subprotocol (browsers cannot set headers)', async () => {
    const ws = await open(B, {}, ['inferno', `bearer.${KEY}`]);
    assert.equal(ws.protocol, 'inferno');
    const c = collector(ws);
    ws.send(JSON.stringify({ id: 'a', type: 'completions', body }));
    assert.equal((await c.wait('a')).end.type, 'done');
    ws.close(1000);
    await assert.rejects(open(B, {}, ['inferno', 'bearer.wrong']), (e) => e.status === 401);
  });

  test('a first auth message; anything else first closes with 1008', async () => {
    const ws = await open(B);
    const c = collector(ws);
    const authed = new Promise((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
    ws.send(JSON.stringify({ type: 'auth', token: KEY }));
    assert.equal((await authed).type, 'authenticated');
    ws.send(JSON.stringify({ id: 'a', type: 'completions', body }));
    assert.equal((await c.wait('a')).end.type, 'done');
    ws.close(1000);
    const ws2 = await open(B);
    const closed = new Promise((r) => ws2.once('close', (code) => r(code)));
    ws2.send(JSON.stringify({ id: 'a', type: 'completions', body }));
    assert.equal(await closed, 1008);
  });

  test('a page of another origin may not open the socket', async () => {
    await assert.rejects(open(A, { origin: 'http://evil.example' }), (e) => e.status === 403);
    const u = new URL(A.url);
    const ws = await open(A, { origin: `http://${u.host}` });
    ws.close(1000);
  });

  test('GET /v1/ws without an upgrade is a 400', async () => {
    const r = await fetch(`${A.url}/v1/ws`);
    assert.equal(r.status, 400);
  });
});

// A client that stops reading (a Python socket with a 4 KiB receive buffer: Node's sockets take
// megabytes before the server notices): its request is cancelled, the slot freed, and the
// server's memory stays put.
const PY = `
import socket, os, json, base64, struct, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(("GET /v1/ws HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
           "Sec-WebSocket-Version: 13\\r\\nSec-WebSocket-Key: %s\\r\\n\\r\\n" % base64.b64encode(os.urandom(16)).decode()).encode())
p = json.dumps({"id": "bp", "type": "completions", "body": {"model": "stories260K", "prompt": "Once",
                "max_tokens": 15000, "ignore_eos": True}}).encode()
k = os.urandom(4)
s.sendall(bytes([0x81, 0xfe]) + struct.pack('>H', len(p)) + k + bytes(b ^ k[i % 4] for i, b in enumerate(p)))
print("sent", flush=True)
time.sleep(600)
`;
const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;

describe('back-pressure', () => {
  test('a client that stops reading has its request cancelled; memory stays bounded', { skip: !hasPython }, async () => {
    const rss = () => Number(fs.readFileSync(`/proc/${C.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
    const before = rss();
    const py = spawn('python3', ['-c', PY, new URL(C.url).port], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => py.stdout.once('data', r));
      let h, busySeen = false;
      const t0 = Date.now();
      while (Date.now() - t0 < 60000 * SLOW) {
        h = await (await fetch(`${C.url}/health`)).json();
        busySeen ||= h.slots_busy > 0;
        if (busySeen && h.slots_busy === 0) break;
        await sleep(200);
      }
      assert.ok(busySeen);
      assert.equal(h.slots_busy, 0, 'the request was cancelled');
      assert.match(C.log(), /the client is not reading; cancelled/);
      // the growth is the KV cells the generation touched (and, under ASan, its quarantine),
      // not the messages: with nothing cancelling them, 15000 tokens of them keep coming
      assert.ok(rss() - before < 64 * 1024 * SLOW, `RSS grew by ${rss() - before} KiB`);
      assert.equal((await fetch(`${C.url}/health`)).status, 200);
    } finally {
      py.kill('SIGKILL');
    }
  });
});

describe('audit log', () => {
  test('every request on a socket has its own audit record, with the key id HTTP requests get', async () => {
    const { BIN } = await import('./harness.mjs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-ws-audit-'));
    const D = await startServer({ args: ['--audit', '--set', `audit.dir=${dir}`, '--api-key', KEY] });
    try {
      const ws = await open(D, { headers: { Authorization: `Bearer ${KEY}` } });
      const c = collector(ws);
      const chat = { model: 'stories260K', messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 8, temperature: 0 };
      ws.send(JSON.stringify({ id: 'a1', type: 'chat.completions', body: chat }));
      ws.send(JSON.stringify({ id: 'e1', type: 'embeddings', body: { model: 'stories260K', input: 'A cat.' } }));
      ws.send(JSON.stringify({ id: 'b1', type: 'chat.completions', body: { ...chat, model: 'nope' } }));
      const [a, e, b] = await Promise.all([c.wait('a1'), c.wait('e1'), c.wait('b1')]);
      ws.close(1000);
      assert.equal(a.end.type, 'done');
      assert.equal(e.end.type, 'done');
      assert.equal(b.end.type, 'error');
      const h = await postJSON(`${D.base}/chat/completions`, chat, { Authorization: `Bearer ${KEY}` });
      assert.equal(h.status, 200);
      await D.stop();
      const q = spawnSync(BIN, ['audit', 'query', '--json', '--set', `audit.dir=${dir}`], { encoding: 'utf8' });
      assert.equal(q.status, 0, q.stderr);
      const recs = q.stdout.trim().split('\n').map((l) => JSON.parse(l));
      const by = (id) => recs.find((r) => r.request_id === id);
      const http = recs.find((r) => r.route === '/v1/chat/completions' && !r.request_id.startsWith('ws-'));
      assert.ok(http, 'the HTTP request has a record');
      for (const [id, route, status] of [['ws-a1', '/v1/chat/completions', 200], ['ws-e1', '/v1/embeddings', 200], ['ws-b1', '/v1/chat/completions', 404]]) {
        const r = by(id);
        assert.ok(r, `no record for ${id}: ${q.stdout}`);
        assert.equal(r.route, route);
        assert.equal(r.status, status);
        assert.equal(r.key_id, http.key_id, `${id}'s key id`);
        assert.equal(r.client, '127.0.0.1');
      }
      assert.equal(by('ws-a1').completion_tokens, a.end.usage.completion_tokens);
      assert.equal(by('ws-a1').completion_tokens, h.json.usage.completion_tokens);
      assert.equal(by('ws-a1').model, 'stories260K');
      const up = recs.find((r) => r.route === '/v1/ws');
      assert.equal(up?.status, 101);
      assert.equal(up.key_id, http.key_id);
      const v = spawnSync(BIN, ['audit', 'verify', '--set', `audit.dir=${dir}`], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
