#!/usr/bin/env node
// serve-bench.mjs - load test for any OpenAI-compatible server (inferno serve, llama-server, …):
// C concurrent clients each send R streaming chat completions one after another; reports
// aggregate generation tokens/s (all completion tokens / wall time of the run), median and p90
// time to first token, and per-request decode speed. No dependencies (Node >= 18 fetch).
//
//   node bench/serve-bench.mjs --base http://127.0.0.1:8080/v1 [--model ID] [--clients 8]
//        [--requests 4] [--max-tokens 128] [--prompt-words 100] [--extra '{"ignore_eos":true}']
//        [--api-key K] [--label NAME] [--json] [--transport sse|ollama|ws]
//
// Completion tokens come from the stream's usage chunk (stream_options.include_usage), else one
// per content chunk. Each client's prompts differ (no shared prefix beyond the template).
// --transport (Inferno): sse (default, POST /v1/chat/completions), ollama (POST /api/chat, NDJSON,
// tokens from the final eval_count), ws (one WebSocket per client on /v1/ws, tokens from the
// done message's usage; Node's WebSocket, else the ws package of tests/server).
const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith('--')) a.push([x.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return a;
}, []));
const base = (args.base || 'http://127.0.0.1:8080/v1').replace(/\/$/, '');
const C = Number(args.clients || 8);
const R = Number(args.requests || 4);
const maxTokens = Number(args['max-tokens'] || 128);
const words = Number(args['prompt-words'] || 100);
const extra = args.extra ? JSON.parse(args.extra) : {};
const headers = { 'Content-Type': 'application/json', ...(args['api-key'] ? { Authorization: `Bearer ${args['api-key']}` } : {}) };

async function model() {
  if (args.model) return args.model;
  const r = await fetch(`${base}/models`, { headers });
  return (await r.json()).data[0].id;
}

const VOCAB = ['time', 'little', 'girl', 'named', 'Lily', 'she', 'loved', 'to', 'play', 'outside', 'with', 'her',
  'dog', 'one', 'day', 'they', 'went', 'park', 'and', 'saw', 'a', 'big', 'red', 'ball', 'the', 'sun', 'was', 'warm'];
function prompt(client, req) {
  let s = `Story ${client}-${req}:`;
  for (let i = 0; i < words; i++) s += ' ' + VOCAB[(i * 7 + client * 13 + req * 3) % VOCAB.length];
  return s;
}

const transport = args.transport || 'sse';
const origin = base.replace(/\/v1$/, '');
const WS = transport === 'ws'
  ? (globalThis.WebSocket ?? (await import(new URL('../tests/server/node_modules/ws/wrapper.mjs', import.meta.url))).default)
  : null;

function body(id, client, req) {
  return { model: id, messages: [{ role: 'user', content: prompt(client, req) }], max_tokens: maxTokens,
    temperature: 0, ...extra };
}

async function oneOllama(id, client, req) {
  const t0 = performance.now();
  const res = await fetch(`${origin}/api/chat`, {
    method: 'POST', headers,
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: prompt(client, req) }], stream: true,
      options: { num_predict: maxTokens, temperature: 0, repeat_penalty: 1, ...(extra.options || {}) } }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', ttft = null, chunks = 0, n = null, tLast = t0;
  for await (const b of res.body) {
    buf += dec.decode(b, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (!line) continue;
      const j = JSON.parse(line);
      if (j.error) throw new Error(j.error);
      if (j.done) n = j.eval_count;
      else if (j.message?.content) {
        if (ttft === null) ttft = performance.now() - t0;
        chunks++;
        tLast = performance.now();
      }
    }
  }
  n = n ?? chunks;
  return { ttft: ttft ?? performance.now() - t0, tokens: n, decodeTps: n > 1 ? (n - 1) / ((tLast - t0 - ttft) / 1000) : 0 };
}

function wsOpen() {
  return new Promise((resolve, reject) => {
    const ws = new WS(`${origin.replace(/^http/, 'ws')}/v1/ws`, args['api-key'] ? ['inferno', `bearer.${args['api-key']}`] : undefined);
    ws.onopen = () => resolve(ws);
    ws.onerror = (e) => reject(new Error(`WebSocket: ${e.message || 'error'}`));
  });
}

async function oneWs(ws, id, client, req) {
  const t0 = performance.now();
  const rid = `${client}-${req}`;
  return new Promise((resolve, reject) => {
    let ttft = null, chunks = 0, tLast = t0;
    ws.onmessage = (ev) => {
      const m = JSON.parse(typeof ev.data === 'string' ? ev.data : ev.data.toString());
      if (m.id !== rid) return;
      if (m.type === 'chunk') {
        if (m.data.choices?.[0]?.delta?.content) {
          if (ttft === null) ttft = performance.now() - t0;
          chunks++;
          tLast = performance.now();
        }
      } else if (m.type === 'done') {
        const n = m.usage?.completion_tokens ?? chunks;
        resolve({ ttft: ttft ?? performance.now() - t0, tokens: n, decodeTps: n > 1 ? (n - 1) / ((tLast - t0 - ttft) / 1000) : 0 });
      } else reject(new Error(JSON.stringify(m.error)));
    };
    ws.send(JSON.stringify({ id: rid, type: 'chat.completions', body: body(id, client, req) }));
  });
}

async function one(id, client, req, ws) {
  if (transport === 'ollama') return oneOllama(id, client, req);
  if (transport === 'ws') return oneWs(ws, id, client, req);
  const t0 = performance.now();
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: prompt(client, req) }], max_tokens: maxTokens,
      temperature: 0, stream: true, stream_options: { include_usage: true }, ...extra }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', ttft = null, chunks = 0, usage = null, tLast = t0;
  for await (const b of res.body) {
    buf += dec.decode(b, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
      if (!data || data === '[DONE]') continue;
      const j = JSON.parse(data);
      if (j.usage) usage = j.usage;
      for (const c of j.choices || []) {
        if (c.delta && c.delta.content) {
          if (ttft === null) ttft = performance.now() - t0;
          chunks++;
          tLast = performance.now();
        }
      }
    }
  }
  const n = usage?.completion_tokens ?? chunks;
  return { ttft: ttft ?? performance.now() - t0, tokens: n, decodeTps: n > 1 ? (n - 1) / ((tLast - t0 - ttft) / 1000) : 0 };
}

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]; };

const id = await model();
const sockets = transport === 'ws' ? await Promise.all(Array.from({ length: C + 1 }, wsOpen)) : [];
await one(id, 99, 99, sockets[C]); // warm-up
const t0 = performance.now();
const results = (await Promise.all(Array.from({ length: C }, async (_, c) => {
  const out = [];
  for (let r = 0; r < R; r++) out.push(await one(id, c, r, sockets[c]));
  return out;
}))).flat();
for (const s of sockets) s.close();
const wall = (performance.now() - t0) / 1000;
const tokens = results.reduce((s, r) => s + r.tokens, 0);
const summary = {
  label: args.label || `${base} (${transport})`, transport, model: id, clients: C, requests: results.length, max_tokens: maxTokens,
  completion_tokens: tokens, wall_s: +wall.toFixed(2),
  gen_tok_per_s: +(tokens / wall).toFixed(2),
  ttft_median_ms: +pct(results.map((r) => r.ttft), 0.5).toFixed(1),
  ttft_p90_ms: +pct(results.map((r) => r.ttft), 0.9).toFixed(1),
  per_request_decode_tok_per_s_median: +pct(results.map((r) => r.decodeTps), 0.5).toFixed(2),
};
if (args.json) console.log(JSON.stringify(summary));
else for (const [k, v] of Object.entries(summary)) console.log(`${k.padEnd(38)} ${v}`);
