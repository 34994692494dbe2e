// hardening_http.test.mjs - issue #14, the HTTP layer: slow clients and connection limits,
// DNS rebinding (Host) and cross-site simple requests (Content-Type), API key hygiene, request
// framing (duplicate Content-Length, Expect: 100-continue, chunked bodies), URLs with NUL bytes,
// and clients that half-close their socket after the request.
// Every client here comes from 127.0.0.1, like a local reverse proxy's would.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServer, isErrorObject, sleep, SLOW, BIN, STORIES } from './harness.mjs';

const MODEL = 'stories260K';
const GOOD = { model: MODEL, messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 4, temperature: 0 };

// A raw connection: write chunks (gapMs apart), collect what comes back until the server closes
// or timeoutMs. Resolves { data, closed, openMs } (openMs: how long the connection lived).
function raw(srvUrl, chunks, { timeoutMs = 10000, gapMs = 0, end = false } = {}) {
  const u = new URL(srvUrl);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(Number(u.port), u.hostname);
    let data = '';
    let closed = false;
    const done = () => resolve({ data, closed, openMs: Date.now() - t0 });
    const t = setTimeout(() => { s.destroy(); done(); }, timeoutMs);
    s.on('data', (d) => { data += d; });
    s.on('error', () => {});
    s.on('close', () => { closed = true; clearTimeout(t); done(); });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        s.write(c);
        if (gapMs) await sleep(gapMs);
      }
      if (end && !s.destroyed) s.end(); // half-close: FIN after the request
    });
  });
}

// The first response's status and JSON body out of raw HTTP/1.1 bytes (Content-Length or chunked).
function parseResponse(data) {
  const m = data.match(/^HTTP\/1\.[01] (\d{3}) /);
  if (!m) return { status: null, json: null, head: '' };
  const i = data.indexOf('\r\n\r\n');
  const head = data.slice(0, i);
  let body = data.slice(i + 4);
  if (/transfer-encoding: *chunked/i.test(head)) {
    let out = '';
    for (;;) {
      const j = body.indexOf('\r\n');
      const n = parseInt(body.slice(0, j), 16);
      if (!(n > 0)) break;
      out += body.slice(j + 2, j + 2 + n);
      body = body.slice(j + 2 + n + 2);
    }
    body = out;
  } else {
    const cl = head.match(/content-length: *(\d+)/i);
    if (cl) body = body.slice(0, Number(cl[1]));
  }
  let json = null;
  try { json = JSON.parse(body); } catch { /* not JSON */ }
  return { status: Number(m[1]), json, head };
}

// node:http lets a test set the Host header (fetch does not).
function request(srvUrl, { method = 'GET', path: p = '/health', headers = {}, body } = {}) {
  const u = new URL(srvUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: p, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// (fresh connections throughout: an idle keep-alive one may be closed by the 2 s header deadline
// just as a pooling client reuses it)
describe('one server, loopback, small pool: 16 connections, deadlines 2 s (headers) and 3 s (body)', () => {
  let srv;
  const HEADER_S = 2 * SLOW;
  const BODY_S = 3 * SLOW;
  before(async () => {
    srv = await startServer({
      args: ['--parallel', '2', '--ctx', '1024', '--set', 'server.max_connections=16',
        '--set', `server.header_timeout_seconds=${HEADER_S}`, '--set', `server.body_timeout_seconds=${BODY_S}`,
        '--set', 'server.timeout_seconds=120', '--set', 'server.max_body_bytes=65536'],
    });
  });
  after(async () => {
    assert.equal(await srv.stop('SIGTERM'), 0);
  });
  const host = () => `Host: ${new URL(srv.url).host}\r\n`;

  test('trickling headers and bodies are closed at their deadline, not kept alive by the trickle', async () => {
    const slow = [];
    for (let i = 0; i < 3; i++) slow.push(raw(srv.url, [...`POST /v1/chat/completions HTTP/1.1\r\n${host()}X-Pad: ${'a'.repeat(100)}`], { gapMs: 200, timeoutMs: 30000 * SLOW }));
    for (let i = 0; i < 3; i++) {
      const head = `POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n`;
      slow.push(raw(srv.url, [head, ...'{"model":"stories260K","messages":'.repeat(20)], { gapMs: 200, timeoutMs: 30000 * SLOW }));
    }
    const res = await Promise.all(slow);
    res.forEach((r, i) => {
      const limit = (i < 3 ? HEADER_S : BODY_S) * 1000;
      assert.ok(r.closed, `connection ${i} was closed by the server`);
      assert.ok(r.openMs >= limit - 500, `connection ${i} closed after ${r.openMs} ms, before its deadline (${limit} ms)`);
      assert.ok(r.openMs <= limit + 3000 * SLOW, `connection ${i} closed after ${r.openMs} ms, deadline ${limit} ms`);
    });
    assert.match(srv.log(), /deadline/);
  });

  test('slowloris: 60 trickling connections from this machine do not lock out /health or a normal request', async () => {
    const slow = [];
    for (let i = 0; i < 40; i++) slow.push(raw(srv.url, [...`GET /v1/models HTTP/1.1\r\n${host()}X-Pad: ${'a'.repeat(200)}`], { gapMs: 250, timeoutMs: 60000 * SLOW }));
    for (let i = 0; i < 20; i++) {
      const head = `POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n`;
      slow.push(raw(srv.url, [head, ...'x'.repeat(400)], { gapMs: 250, timeoutMs: 60000 * SLOW }));
    }
    await sleep(1000);
    // fresh connections (agent: false), as a load balancer's probe or a new client would open
    const h = await request(srv.url, { path: '/health' });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.status, 'ok');
    const r = await request(srv.url, { method: 'POST', path: '/v1/chat/completions', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(GOOD) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices.length, 1);
    const res = await Promise.all(slow);
    const stillOpen = res.filter((x) => !x.closed).length;
    assert.equal(stillOpen, 0, 'every trickling connection was closed by the server');
    for (const x of res) assert.ok(x.openMs <= (BODY_S + 3 * SLOW) * 1000, `a trickling connection lived ${x.openMs} ms`);
    const h2 = await request(srv.url);
    assert.equal(h2.status, 200);
  });

  test('Host: loopback names are accepted, a foreign name (DNS rebinding) gets 403', async () => {
    const port = new URL(srv.url).port;
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `LOCALHOST:${port}`, `[::1]:${port}`]) {
      const r = await request(srv.url, { path: '/v1/models', headers: { Host: h } });
      assert.equal(r.status, 200, `${h}: ${r.text}`);
    }
    for (const h of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example`]) {
      const r = await request(srv.url, { path: '/v1/models', headers: { Host: h } });
      assert.equal(r.status, 403, `${h}: ${r.text}`);
      assert.ok(isErrorObject(r.json), r.text);
      assert.ok(r.headers['x-request-id']);
    }
    const r = await request(srv.url, { method: 'POST', path: '/v1/chat/completions', headers: { Host: 'evil.example', 'Content-Type': 'application/json' }, body: JSON.stringify(GOOD) });
    assert.equal(r.status, 403, r.text);
    // no Host: an HTTP/1.1 request needs one (RFC 9112 3.2); HTTP/1.0 (no browser) may omit it
    const r11 = parseResponse((await raw(srv.url, ['GET /health HTTP/1.1\r\n\r\n'])).data);
    assert.equal(r11.status, 400);
    assert.ok(isErrorObject(r11.json));
    const r10 = parseResponse((await raw(srv.url, ['GET /health HTTP/1.0\r\n\r\n'])).data);
    assert.equal(r10.status, 200);
  });

  test('JSON endpoints require Content-Type: application/json (415 otherwise)', async () => {
    for (const ct of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', null]) {
      for (const p of ['/v1/chat/completions', '/tokenize']) {
        const body = p === '/tokenize' ? '{"content":"hi"}' : JSON.stringify(GOOD);
        const r = await request(srv.url, { method: 'POST', path: p, headers: ct ? { 'Content-Type': ct } : {}, body });
        assert.equal(r.status, 415, `${p} ${ct}: ${r.text}`);
        assert.ok(isErrorObject(r.json), r.text);
        assert.ok(r.headers['x-request-id']);
      }
    }
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) {
      const r = await request(srv.url, { method: 'POST', path: '/tokenize', headers: { 'Content-Type': ct }, body: '{"content":"hi"}' });
      assert.equal(r.status, 200, `${ct}: ${r.text}`);
    }
  });

  test('conflicting duplicate Content-Length -> 400 and the connection is closed (no smuggled request)', async () => {
    const smuggled = `GET /v1/models HTTP/1.1\r\n${host()}\r\n`;
    const body = '{"content":"hi"}';
    const r = await raw(srv.url, [`POST /tokenize HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length + smuggled.length}\r\n\r\n${body}${smuggled}`]);
    const p = parseResponse(r.data);
    assert.equal(p.status, 400, r.data.slice(0, 300));
    assert.ok(isErrorObject(p.json), r.data.slice(0, 300));
    assert.equal((r.data.match(/HTTP\/1\.1 /g) || []).length, 1, 'exactly one response');
    assert.ok(r.closed);
    // Content-Length together with Transfer-Encoding: refused too
    const r2 = await raw(srv.url, [`POST /tokenize HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n${body}\r\n0\r\n\r\n`]);
    assert.equal(parseResponse(r2.data).status, 400, r2.data.slice(0, 300));
    // the same value twice is one length (RFC 9112 6.3)
    const r3 = await raw(srv.url, [`POST /tokenize HTTP/1.1\r\n${host()}Connection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`]);
    assert.equal(parseResponse(r3.data).status, 200, r3.data.slice(0, 300));
  });

  test('Expect: 100-continue on a refused request gets the final status at once, not 100', async () => {
    const cases = [
      [`POST /v1/nope HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n`, 404],
      [`POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 9999999\r\nExpect: 100-continue\r\n\r\n`, 413],
      [`POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: text/plain\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n`, 415],
    ];
    for (const [req, status] of cases) {
      const r = await raw(srv.url, [req], { timeoutMs: 5000 * SLOW });
      assert.equal(parseResponse(r.data).status, status, r.data.slice(0, 200));
      assert.ok(r.closed, 'the connection is closed (the body was never sent)');
    }
    // an acceptable request still gets 100 Continue, then its answer
    const body = '{"content":"hi"}';
    const u = new URL(srv.url);
    const got = await new Promise((resolve) => {
      const s = net.connect(Number(u.port), u.hostname);
      let data = '';
      s.on('data', (d) => {
        data += d;
        if (data.startsWith('HTTP/1.1 100') && !s.sentBody) { s.sentBody = true; s.write(body); }
      });
      s.on('close', () => resolve(data));
      s.on('connect', () => s.write(`POST /tokenize HTTP/1.1\r\n${host()}Connection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`));
    });
    assert.match(got, /^HTTP\/1\.1 100 /);
    assert.match(got, /HTTP\/1\.1 200 /);
  });

  test('a URL whose decoded name holds a NUL or control byte is refused, not truncated', async () => {
    const ok = await request(srv.url, { path: `/v1/models/${MODEL}` });
    assert.equal(ok.status, 200);
    for (const p of [`/v1/models/${MODEL}%00junk`, `/v1/models/${MODEL}%00`, `/v1/models/${MODEL}%0a`, `/v1/models/${MODEL}%1F`, `/health%00x`]) {
      const r = await request(srv.url, { path: p });
      assert.equal(r.status, 400, `${p}: ${r.status} ${r.text}`);
      assert.ok(isErrorObject(r.json), r.text);
      assert.equal(r.json.error.code, 'invalid_url', r.text);
    }
  });

  test('a chunked body far over the limit (70 MB) gets a 413 JSON error', async () => {
    const u = new URL(srv.url);
    const got = await new Promise((resolve) => {
      const s = net.connect(Number(u.port), u.hostname);
      let data = '';
      const t = setTimeout(() => { s.destroy(); }, 60000 * SLOW);
      s.on('data', (d) => { data += d; });
      s.on('error', () => {});
      s.on('close', () => { clearTimeout(t); resolve(data); });
      s.on('connect', async () => {
        s.write(`POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
        const chunk = Buffer.from(`100000\r\n${'x'.repeat(0x100000)}\r\n`);
        for (let i = 0; i < 70 && !s.destroyed; i++) {
          if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
        }
        if (!s.destroyed) s.write('0\r\n\r\n');
      });
    });
    const p = parseResponse(got);
    assert.equal(p.status, 413, got.slice(0, 300));
    assert.ok(isErrorObject(p.json), got.slice(0, 300));
    assert.match(p.head, /x-request-id/i);
    const h = await request(srv.url);
    assert.equal(h.status, 200);
  });

  test('a client that half-closes (shutdown SHUT_WR) after its request is answered', async () => {
    // long enough that the server checks the socket while it generates
    const body = JSON.stringify({ ...GOOD, max_tokens: 300, ignore_eos: true });
    const r = await raw(srv.url, [`POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`], { end: true, timeoutMs: 30000 * SLOW });
    const p = parseResponse(r.data);
    assert.equal(p.status, 200, r.data.slice(0, 300));
    assert.ok(p.json && p.json.choices && p.json.choices.length === 1, r.data.slice(0, 300));
    const r2 = await raw(srv.url, [`GET /health HTTP/1.1\r\n${host()}\r\n`], { end: true });
    assert.equal(parseResponse(r2.data).status, 200, r2.data.slice(0, 300));
    // streaming too: every event, then [DONE]
    const sbody = JSON.stringify({ ...GOOD, max_tokens: 300, ignore_eos: true, stream: true });
    const r3 = await raw(srv.url, [`POST /v1/chat/completions HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: ${sbody.length}\r\n\r\n${sbody}`], { end: true, timeoutMs: 30000 * SLOW });
    assert.match(r3.data, /^HTTP\/1\.1 200 /);
    assert.match(r3.data, /data: \[DONE\]/);
  });
});

describe('a second server: per-address limit counting loopback, allowed_hosts, keys from a file', () => {
  let srv;
  let dir;
  const LONG = 'sk-' + 'L'.repeat(5000);
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-h14-'));
    fs.writeFileSync(path.join(dir, 'keys'), `# keys\n   # an indented comment\n\t#tabbed\n  sk-short  \n${LONG}\n\n`);
    srv = await startServer({
      args: ['--parallel', '1', '--ctx', '256', '--api-key-file', path.join(dir, 'keys'),
        '--set', 'server.max_connections_per_ip=4', '--set', 'server.per_ip_exempt=[]',
        '--set', 'server.allowed_hosts=["inferno.test", "Models.Example.COM"]'],
    });
  });
  after(async () => {
    assert.equal(await srv.stop('SIGTERM'), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('keys: whole lines of any length, trimmed; indented comments are not keys', async () => {
    const get = (key) => request(srv.url, { path: '/v1/models', headers: key === null ? {} : { Authorization: `Bearer ${key}` } });
    assert.equal((await get('sk-short')).status, 200);
    assert.equal((await get(LONG)).status, 200);
    for (const k of [LONG.slice(0, 4096), LONG.slice(4096), LONG.slice(4095), '# an indented comment', '#tabbed', '   # an indented comment', null]) {
      assert.equal((await get(k)).status, 401, JSON.stringify(k?.slice(0, 40)));
    }
  });

  test('Expect: 100-continue without a valid key gets 401 at once', async () => {
    const host = `Host: ${new URL(srv.url).host}\r\n`;
    const r = await raw(srv.url, [`POST /v1/chat/completions HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n`], { timeoutMs: 5000 * SLOW });
    assert.equal(parseResponse(r.data).status, 401, r.data.slice(0, 200));
  });

  test('server.allowed_hosts adds names (case-insensitive); others still get 403', async () => {
    for (const h of ['inferno.test', 'inferno.test:8080', 'models.example.com', `localhost:${new URL(srv.url).port}`]) {
      assert.equal((await request(srv.url, { headers: { Host: h } })).status, 200, h);
    }
    assert.equal((await request(srv.url, { headers: { Host: 'evil.example' } })).status, 403);
  });

  test('per-address connection limit: the 5th connection from 127.0.0.1 is refused, others unaffected', async () => {
    // (an idle keep-alive connection left by the harness may hold one of the 4)
    const u = new URL(srv.url);
    const socks = [];
    for (let i = 0; i < 6; i++) {
      socks.push(await new Promise((resolve) => {
        const s = net.connect(Number(u.port), u.hostname, () => resolve(s));
        s.closedBy = null;
        s.on('data', () => { s.gotData = true; });
        s.on('close', () => { s.closedBy = 'server'; });
        s.on('error', () => {});
      }));
      await sleep(50);
    }
    await sleep(500 * SLOW);
    const refused = socks.filter((s) => s.closedBy);
    assert.ok(refused.length >= 2, `${refused.length} of 6 connections refused`);
    assert.ok(socks.length - refused.length <= 4, 'at most 4 open at once');
    assert.ok(!refused.some((s) => s.gotData), 'refused connections get no answer');
    assert.ok(socks.slice(0, 2).every((s) => !s.closedBy), 'the first ones stay open');
    for (const s of socks) s.destroy();
    let ok = 0;
    for (let i = 0; i < 50 && ok !== 200; i++) {
      await sleep(100);
      ok = (await request(srv.url).catch(() => ({ status: 0 }))).status;
    }
    assert.equal(ok, 200);
  });
});

describe('API keys that would start an open or surprising server are refused', () => {
  const serve = (args, env = {}) => spawnSync(BIN, ['serve', '-m', STORIES, '--host', '127.0.0.1', '--port', '0', ...args], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60000 * SLOW,
  });
  let dir;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-h14k-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('--api-key "" (an unset shell variable)', () => {
    const r = serve(['--api-key', '']);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /listening/);
    assert.match(r.stderr, /empty/i);
  });
  test('--api-key of blanks, INFERNO_API_KEYS with an empty entry', () => {
    assert.notEqual(serve(['--api-key', '   ']).status, 0);
    const r = serve([], { INFERNO_API_KEYS: 'sk-a,,sk-b' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /INFERNO_API_KEYS/);
  });
  test('a key with inner whitespace', () => {
    fs.writeFileSync(path.join(dir, 'ws'), 'sk-one two\n');
    const r = serve(['--api-key-file', path.join(dir, 'ws')]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /whitespace/);
    assert.notEqual(serve(['--api-key', 'sk-a\tb']).status, 0);
  });
  test('a key file with no key in it', () => {
    fs.writeFileSync(path.join(dir, 'none'), '# nothing yet\n   # still nothing\n\n');
    const r = serve(['--api-key-file', path.join(dir, 'none')]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no key/);
  });
});

describe('descriptors above FD_SETSIZE: 1100 connections open at once are all served', () => {
  let srv;
  before(async () => {
    srv = await startServer({ args: ['--set', 'server.max_connections=1200'] });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test('each of 1100 keep-alive connections gets its /health answer (poll(), not select())', async () => {
    const u = new URL(srv.url);
    const N = 1100;
    const socks = [];
    // open them all first, so that the server holds N descriptors at once
    await Promise.all(Array.from({ length: N }, () => new Promise((resolve) => {
      const s = net.connect(Number(u.port), u.hostname);
      s.on('error', () => resolve());
      s.on('connect', () => resolve());
      socks.push(s);
    })));
    await sleep(500 * SLOW);
    const answers = await Promise.all(socks.map((s) => new Promise((resolve) => {
      let data = '';
      const t = setTimeout(() => resolve(data), 60000 * SLOW);
      s.on('data', (d) => {
        data += d;
        if (/\r\n\r\n[\s\S]*"status"/.test(data)) { clearTimeout(t); resolve(data); }
      });
      s.on('close', () => { clearTimeout(t); resolve(data); });
      if (!s.destroyed) s.write(`GET /health HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
    })));
    for (const s of socks) s.destroy();
    const ok = answers.filter((d) => /^HTTP\/1\.1 200 /.test(d)).length;
    assert.equal(ok, N, `${ok} of ${N} connections answered 200`);
    const r = await fetch(`${srv.url}/health`);
    assert.equal(r.status, 200);
  });
});
