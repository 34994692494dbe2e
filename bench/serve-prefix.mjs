#!/usr/bin/env node
// serve-prefix.mjs - prefix reuse: two streaming chats sharing a long system prompt (about
// --prefix-words words, >= 500 tokens for the usual vocabularies); prints both TTFTs, their
// ratio and the second request's usage.prompt_tokens_details.cached_tokens.
//   node bench/serve-prefix.mjs --base http://127.0.0.1:8080/v1 [--model ID] [--prefix-words 600]
const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith('--')) a.push([x.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return a;
}, []));
const base = (args.base || 'http://127.0.0.1:8080/v1').replace(/\/$/, '');
const nWords = Number(args['prefix-words'] || 600);
const id = args.model || (await (await fetch(`${base}/models`)).json()).data[0].id;
const W = ['the', 'little', 'cat', 'ran', 'to', 'big', 'tree', 'and', 'saw', 'a', 'bird', 'sing'];
const sys = Array.from({ length: nWords }, (_, i) => W[(i * 7 + Number(args.seed || 0)) % W.length]).join(' ');

async function ttft(q) {
  const t0 = performance.now();
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: id, temperature: 0, max_tokens: 4, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'system', content: sys }, { role: 'user', content: q }] }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', t = null, usage = null;
  for await (const b of res.body) {
    buf += dec.decode(b, { stream: true });
    if (t === null && /"content":"[^"]/.test(buf)) t = performance.now() - t0;
  }
  for (const l of buf.split('\n')) if (l.startsWith('data: {') && l.includes('"usage"')) { const j = JSON.parse(l.slice(6)); if (j.usage) usage = j.usage; }
  return { t, usage };
}
const a = await ttft('First question about birds?');
const b = await ttft('Another one, on trees!');
console.log(JSON.stringify({
  model: id, prompt_tokens: [a.usage?.prompt_tokens, b.usage?.prompt_tokens],
  cached_tokens_second: b.usage?.prompt_tokens_details?.cached_tokens ?? b.usage?.cached_tokens ?? null,
  ttft_first_ms: +a.t.toFixed(1), ttft_second_ms: +b.t.toFixed(1), ratio: +(a.t / b.t).toFixed(2),
}));
