#!/usr/bin/env node
// batch-bench.mjs - the Batch API against live traffic on one `inferno serve` (issue #20):
//   1. live: C concurrent clients, R short streamed chats each -> aggregate completion tok/s;
//      and the TTFT of a lone streamed client (P sequential requests) on the idle server;
//   2. batch: N requests of the same shape through /v1/files + /v1/batches -> tok/s from
//      creation to `completed` (validation and the output file included), while the lone
//      client measures TTFT again during the batch.
// Reports both tok/s and their ratio, TTFT median / p90 without and with the batch, and ratio.
// No dependencies (Node >= 18: fetch, FormData, Blob).
//
//   node bench/batch-bench.mjs --base http://127.0.0.1:8080/v1 [--model ID] [--clients 8]
//        [--requests 16] [--batch 1000] [--max-tokens 32] [--probes 20] [--json]
const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith('--')) a.push([x.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return a;
}, []));
const base = (args.base || 'http://127.0.0.1:8080/v1').replace(/\/$/, '');
const C = Number(args.clients || 8);
const R = Number(args.requests || 16);
const N = Number(args.batch || 1000);
const maxTokens = Number(args['max-tokens'] || 32);
const P = Number(args.probes || 20);
const headers = { 'Content-Type': 'application/json' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

async function modelId() {
  if (args.model) return args.model;
  return (await (await fetch(`${base}/models`)).json()).data[0].id;
}

const body = (model, tag) => ({
  model,
  messages: [{ role: 'user', content: `Write a short note about item ${tag}.` }],
  max_tokens: maxTokens,
  temperature: 0,
  ignore_eos: true,
});

// One streamed chat: { ttft ms, tokens }.
async function streamed(model, tag) {
  const t0 = now();
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ ...body(model, tag), stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`live request: ${res.status} ${await res.text()}`);
  let ttft = null, tokens = 0, buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const o = JSON.parse(ev.slice(6));
      if (ttft === null && o.choices?.[0]?.delta?.content) ttft = now() - t0;
      if (o.usage) tokens = o.usage.completion_tokens;
    }
  }
  return { ttft: ttft ?? now() - t0, tokens };
}

const quantile = (v, q) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

async function probe(model, n, tag, stopWhen = () => false) {
  const t = [];
  for (let i = 0; i < n && !stopWhen(); i++) {
    t.push((await streamed(model, `${tag}-${i}`)).ttft);
    await sleep(50);
  }
  return t;
}

async function main() {
  const model = await modelId();
  // warm-up
  await Promise.all(Array.from({ length: C }, (_, c) => streamed(model, `warm-${c}`)));
  // TTFT of a lone client on the idle server
  const idle = await probe(model, P, 'idle');
  // live throughput: C clients x R requests
  let liveTokens = 0;
  const t0 = now();
  await Promise.all(Array.from({ length: C }, async (_, c) => {
    for (let r = 0; r < R; r++) {
      const { tokens } = await streamed(model, `live-${c}-${r}`); // (not `x += await`: lost updates)
      liveTokens += tokens;
    }
  }));
  const liveSec = (now() - t0) / 1000;
  // the batch, with the lone client probing TTFT meanwhile
  const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ custom_id: `b${i}`, method: 'POST', url: '/v1/chat/completions', body: body(model, `batch-${i}`) })).join('\n') + '\n';
  const fd = new FormData();
  fd.append('purpose', 'batch');
  fd.append('file', new Blob([lines]), 'bench.jsonl');
  const tb = now();
  const f = await (await fetch(`${base}/files`, { method: 'POST', body: fd })).json();
  const b0 = await (await fetch(`${base}/batches`, { method: 'POST', headers, body: JSON.stringify({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' }) })).json();
  let done = false, b = b0;
  const poll = (async () => {
    while (!['completed', 'failed', 'cancelled', 'expired'].includes(b.status)) {
      await sleep(100);
      b = await (await fetch(`${base}/batches/${b0.id}`)).json();
    }
    done = true;
  })();
  // probe only while the batch is running its requests
  while (b.status === 'validating') await sleep(20);
  const during = await probe(model, P, 'during', () => done);
  await poll;
  const batchSec = (now() - tb) / 1000;
  if (b.status !== 'completed') throw new Error(`batch ${b.status}: ${JSON.stringify(b.errors)}`);
  const out = await (await fetch(`${base}/files/${b.output_file_id}/content`)).text();
  let batchTokens = 0;
  for (const l of out.split('\n')) if (l) batchTokens += JSON.parse(l).response.body.usage.completion_tokens;
  const r = {
    model, clients: C, live_requests: C * R, batch_requests: N, max_tokens: maxTokens,
    live_tok_s: liveTokens / liveSec, batch_tok_s: batchTokens / batchSec,
    batch_vs_live: (batchTokens / batchSec) / (liveTokens / liveSec),
    ttft_idle_ms: { median: quantile(idle, 0.5), p90: quantile(idle, 0.9), n: idle.length },
    ttft_during_batch_ms: { median: quantile(during, 0.5), p90: quantile(during, 0.9), n: during.length },
  };
  r.ttft_ratio_median = r.ttft_during_batch_ms.median / r.ttft_idle_ms.median;
  if (args.json) console.log(JSON.stringify(r));
  else {
    console.log(`live: ${C} clients x ${R} requests: ${r.live_tok_s.toFixed(1)} tok/s`);
    console.log(`batch: ${N} requests: ${r.batch_tok_s.toFixed(1)} tok/s (${(100 * r.batch_vs_live).toFixed(1)} % of live)`);
    console.log(`TTFT idle: median ${r.ttft_idle_ms.median.toFixed(1)} ms, p90 ${r.ttft_idle_ms.p90.toFixed(1)} ms`);
    console.log(`TTFT during the batch: median ${r.ttft_during_batch_ms.median.toFixed(1)} ms, p90 ${r.ttft_during_batch_ms.p90.toFixed(1)} ms (${r.ttft_ratio_median.toFixed(2)}x, ${during.length} probes)`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
