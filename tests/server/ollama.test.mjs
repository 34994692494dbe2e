// ollama.test.mjs - Ollama's API (issue #22) driven by the official `ollama` npm client (pinned in
// package.json), with plain fetch for HEAD/GET / and raw bodies. The references are independent
// of the Ollama layer: the same request through the OpenAI endpoints (which render, tokenize and
// sample on their own path), the model files on disk, the chat template given to gen-synthetic,
// and JSON Schema checks written here.
//
// Instance: stories260K (-m, the default model) plus a models_dir holding syn-chat, a synthetic
// random-weight model with Qwen 2.5's chat template (tool calls in <tool_call> tags).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ollama } from 'ollama';
import { startServer, syntheticModel, postJSON, SHARED, STORIES, sleep } from './harness.mjs';

const QWEN = path.join(SHARED, 'testdata/chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja');
const GREEDY = { temperature: 0, repeat_penalty: 1 };

let srv, ollama, dir, synPath, genericPath;

before(async () => {
  synPath = syntheticModel({ ctx: 2048, template: fs.existsSync(QWEN) ? QWEN : null, name: 'syn-chat' });
  dir = synPath ? path.dirname(synPath) : fs.mkdtempSync('/tmp/inferno-ollama-');
  // no chat template: ChatML and the generic tool format (a call is a JSON object), which a
  // JSON Schema in `format` can force
  genericPath = syntheticModel({ ctx: 2048, name: 'syn-generic' });
  if (genericPath) fs.symlinkSync(genericPath, path.join(dir, 'syn-generic.gguf'));
  srv = await startServer({
    // the hubs point at a closed port: no test ever reaches a real one (pull itself:
    // tests/pull_test.py, against a local hub)
    args: ['--parallel', '4', '--ctx', '4096', '--set', `models_dir=${dir}`, '--set', 'server.max_loaded_models=2',
           '--set', 'hub.endpoint=http://127.0.0.1:9', '--set', 'hub.ollama_endpoint=http://127.0.0.1:9',
           '--set', 'hub.retries=0'],
  });
  ollama = new Ollama({ host: srv.url });
});

after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

// The OpenAI reference for a chat at temperature 0.
async function openaiChat(model, messages, max_tokens) {
  const r = await postJSON(`${srv.base}/chat/completions`, { model, messages, max_tokens, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  return r.json.choices[0].message.content;
}

function checkTimings(r) {
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration']) {
    assert.ok(Number.isInteger(r[k]) && r[k] >= 0, `${k} = ${r[k]}`);
  }
  assert.ok(r.total_duration >= r.eval_duration, 'total covers generation');
  assert.ok(r.prompt_eval_count > 0);
}

describe('probes and listings', () => {
  test('GET and HEAD / answer that the server runs', async () => {
    const g = await fetch(`${srv.url}/`);
    assert.equal(g.status, 200);
    assert.equal(await g.text(), 'Inferno is running');
    const h = await fetch(`${srv.url}/`, { method: 'HEAD' });
    assert.equal(h.status, 200);
  });

  test('version', async () => {
    const v = await ollama.version();
    assert.match(v.version, /^\d+\.\d+\.\d+/);
  });

  test('list: every model with its file size and details', async () => {
    const { models } = await ollama.list();
    const byName = Object.fromEntries(models.map((m) => [m.name, m]));
    const st = byName['stories260K:latest'];
    assert.ok(st, JSON.stringify(models.map((m) => m.name)));
    assert.equal(st.size, fs.statSync(STORIES).size);
    assert.equal(st.details.format, 'gguf');
    assert.equal(st.details.family, 'llama');
    assert.match(st.digest, /^[0-9a-f]{64}$/);
    assert.ok(!Number.isNaN(Date.parse(st.modified_at)));
    if (synPath) assert.equal(byName['syn-chat:latest'].size, fs.statSync(synPath).size);
  });

  test('show: GGUF keys in model_info, the template, capabilities', async () => {
    const s = await ollama.show({ model: 'stories260K' });
    assert.equal(s.model_info['general.architecture'], 'llama');
    assert.ok(Number.isInteger(s.model_info['llama.context_length']));
    assert.match(s.modelfile, /^FROM /m);
    assert.ok(s.capabilities.includes('completion'));
    if (synPath && fs.existsSync(QWEN)) {
      const t = await ollama.show({ model: 'syn-chat:latest' });
      assert.equal(t.template, fs.readFileSync(QWEN, 'utf8'));
      assert.ok(t.capabilities.includes('tools'));
    }
  });

  test('unknown model: 404 with Ollama\'s error shape', async () => {
    await assert.rejects(ollama.show({ model: 'no-such-model' }), (e) => e.status_code === 404 && /not found/.test(e.error));
    await assert.rejects(ollama.generate({ model: 'no-such-model', prompt: 'x' }), (e) => e.status_code === 404);
    const raw = await postJSON(`${srv.url}/api/chat`, { model: 'nope', messages: [] });
    assert.equal(raw.status, 404);
    assert.equal(typeof raw.json.error, 'string');
  });
});

describe('generate', () => {
  test('non-streamed, temperature 0: the text of the chat template path, timings, context', async () => {
    const r = await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', options: { ...GREEDY, num_predict: 12 } });
    assert.equal(r.done, true);
    assert.equal(r.model, 'stories260K');
    assert.equal(r.response, await openaiChat('stories260K', [{ role: 'user', content: 'Once upon a time' }], 12));
    assert.equal(r.eval_count, 12);
    assert.equal(r.done_reason, 'length');
    checkTimings(r);
    assert.ok(Array.isArray(r.context) && r.context.length === r.prompt_eval_count + r.eval_count);
  });

  test('streamed: the chunks add up to the non-streamed text', async () => {
    const opts = { ...GREEDY, num_predict: 10 };
    const whole = await ollama.generate({ model: 'stories260K', prompt: 'The cat', options: opts });
    let text = '';
    let last;
    for await (const part of await ollama.generate({ model: 'stories260K', prompt: 'The cat', options: opts, stream: true })) {
      if (!part.done) text += part.response;
      last = part;
    }
    assert.equal(text, whole.response);
    assert.equal(last.done, true);
    checkTimings(last);
    assert.deepEqual(last.context, whole.context);
  });

  test('raw: the prompt as given, as /v1/completions takes it', async () => {
    const r = await ollama.generate({ model: 'stories260K', prompt: 'Lily saw a', raw: true, options: { ...GREEDY, num_predict: 8 } });
    const ref = await postJSON(`${srv.base}/completions`, { model: 'stories260K', prompt: 'Lily saw a', max_tokens: 8, temperature: 0 });
    assert.equal(r.response, ref.json.choices[0].text);
  });

  test('context continues a conversation', async () => {
    const a = await ollama.generate({ model: 'stories260K', prompt: 'Tom', options: { ...GREEDY, num_predict: 4 } });
    const b = await ollama.generate({ model: 'stories260K', prompt: 'and', context: a.context, options: { ...GREEDY, num_predict: 4 } });
    assert.deepEqual(b.context.slice(0, a.context.length), a.context);
    await assert.rejects(ollama.generate({ model: 'stories260K', prompt: 'x', context: [1e9] }), (e) => e.status_code === 400);
  });

  test('an empty prompt loads the model', async () => {
    const r = await ollama.generate({ model: 'stories260K', prompt: '' });
    assert.equal(r.done, true);
    assert.equal(r.done_reason, 'load');
  });

  test('a template override: the prompt it writes, as a raw prompt formatted by hand', async () => {
    const opts = { ...GREEDY, num_predict: 8 };
    const tpl = '{{ if .System }}[{{ .System }}] {{ end }}Q: {{ .Prompt }}\nA:{{ .Response }}';
    const t = await ollama.generate({ model: 'stories260K', prompt: 'hi', system: 'be brief', template: tpl, options: opts });
    const raw = await ollama.generate({ model: 'stories260K', prompt: '[be brief] Q: hi\nA:', raw: true, options: opts });
    assert.equal(t.response, raw.response);
    await assert.rejects(ollama.generate({ model: 'stories260K', prompt: 'x', template: '{{ range .Messages }}{{ .Content }}{{ end }}' }), (e) => e.status_code === 400 && /range/.test(e.error));
  });

  test('images and raw with system are refused with 400', async () => {
    await assert.rejects(ollama.generate({ model: 'stories260K', prompt: 'x', images: ['aGVsbG8='] }), (e) => e.status_code === 400 && /images/.test(e.error));
    await assert.rejects(ollama.generate({ model: 'stories260K', prompt: 'x', raw: true, system: 's' }), (e) => e.status_code === 400);
  });

  test('suffix on a model without fill-in-the-middle tokens: 400', async () => {
    await assert.rejects(ollama.generate({ model: 'stories260K', prompt: 'def f(', suffix: 'return 1' }), (e) => e.status_code === 400 && /insert/.test(e.error));
  });
});

describe('options', () => {
  test('num_predict, stop, seed', async () => {
    const a = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { num_predict: 3 } });
    assert.equal(a.eval_count, 3);
    const s1 = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { temperature: 1, seed: 42, num_predict: 12 } });
    const s2 = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { temperature: 1, seed: 42, num_predict: 12 } });
    assert.equal(s1.response, s2.response);
    // a stop string taken from the greedy text ends the output before it
    const g = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { ...GREEDY, num_predict: 16 } });
    const cut = g.response.slice(3, 5);
    if (cut.length === 2) {
      const st = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { ...GREEDY, num_predict: 16, stop: [cut] } });
      assert.equal(st.response, g.response.slice(0, g.response.indexOf(cut)));
      assert.equal(st.done_reason, 'stop');
    }
  });

  test('penalties and samplers change the text; unknown options are ignored', async () => {
    const r = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { num_predict: 4, top_k: 5, top_p: 0.5, min_p: 0.1, typical_p: 0.9, repeat_last_n: 16, presence_penalty: 0.5, frequency_penalty: 0.5, num_ctx: 512, num_thread: 1, mirostat: 0, no_such_option: true } });
    assert.equal(r.done, true);
  });

  test('an option of the wrong type is a 400 with Ollama\'s error shape', async () => {
    const raw = await postJSON(`${srv.url}/api/generate`, { model: 'stories260K', prompt: 'x', options: { temperature: 'hot' } });
    assert.equal(raw.status, 400);
    assert.equal(typeof raw.json.error, 'string');
    assert.match(raw.json.error, /temperature/);
    await assert.rejects(ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], options: { num_predict: 'ten' } }), (e) => e.status_code === 400);
    await assert.rejects(ollama.generate({ model: 'stories260K', prompt: 'x', keep_alive: 'soon' }), (e) => e.status_code === 400);
  });
});

describe('chat', () => {
  const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me one.' }];

  test('non-streamed and streamed equal the OpenAI chat at temperature 0', async () => {
    const ref = await openaiChat('stories260K', messages, 10);
    const r = await ollama.chat({ model: 'stories260K', messages, options: { ...GREEDY, num_predict: 10 } });
    assert.equal(r.message.role, 'assistant');
    assert.equal(r.message.content, ref);
    assert.equal(r.done, true);
    checkTimings(r);
    let text = '';
    let last;
    for await (const part of await ollama.chat({ model: 'stories260K', messages, options: { ...GREEDY, num_predict: 10 }, stream: true })) {
      if (!part.done) text += part.message.content;
      last = part;
    }
    assert.equal(text, ref);
    assert.equal(last.done, true);
    assert.equal(last.eval_count, 10);
  });

  test('format "json" gives JSON; a schema is followed', async () => {
    // "json" is any object (unbounded for a random model): parsed when it ended by itself
    const j = await ollama.chat({ model: 'stories260K', messages, format: 'json', options: { num_predict: 200 } });
    assert.match(j.message.content, /^\s*\{/);
    if (j.done_reason === 'stop') JSON.parse(j.message.content);
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['name', 'age'], additionalProperties: false };
    const s = await ollama.chat({ model: 'stories260K', messages, format: schema, options: { num_predict: 200 } });
    const v = JSON.parse(s.message.content);
    assert.deepEqual(Object.keys(v).sort(), ['age', 'name']);
    assert.ok(typeof v.name === 'string' && [...v.name].length <= 8);
    assert.ok(Number.isInteger(v.age) && v.age >= 0 && v.age <= 99);
    const g = await ollama.generate({ model: 'stories260K', prompt: 'x', format: schema, options: { num_predict: 200 } });
    assert.deepEqual(Object.keys(JSON.parse(g.response)).sort(), ['age', 'name']);
  });

  // (random models never emit a call of their own, so the shape loop below may check nothing;
  // the forced call after it is the end-to-end check)
  test('tools: accepted with a history of calls and results, streaming and not; any calls in Ollama\'s shape', { skip: !synPath }, async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const history = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 21}', tool_name: 'get_weather' },
      { role: 'user', content: 'And in Rome?' },
    ];
    for (const stream of [false, true]) {
      const parts = stream
        ? await (async () => { const a = []; for await (const p of await ollama.chat({ model: 'syn-chat', messages: history, tools, stream, options: { num_predict: 40 } })) a.push(p); return a; })()
        : [await ollama.chat({ model: 'syn-chat', messages: history, tools, options: { num_predict: 40 } })];
      assert.equal(parts.at(-1).done, true);
      for (const p of parts) {
        for (const c of p.message?.tool_calls || []) {
          assert.equal(typeof c.function.name, 'string');
          assert.equal(typeof c.function.arguments, 'object');
        }
      }
    }
  });

  test('tools: a call forced by a JSON Schema in `format` comes back as message.tool_calls, equal to the OpenAI endpoint\'s', { skip: !genericPath }, async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const callSchema = {
      type: 'object', additionalProperties: false, required: ['tool_calls'],
      properties: {
        tool_calls: {
          type: 'array', minItems: 1, maxItems: 1,
          items: {
            type: 'object', additionalProperties: false, required: ['name', 'arguments'],
            properties: {
              name: { const: 'get_weather' },
              arguments: { type: 'object', additionalProperties: false, required: ['city'], properties: { city: { type: 'string', maxLength: 12 } } },
            },
          },
        },
      },
    };
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const opts = { ...GREEDY, num_predict: 400 };
    const r = await ollama.chat({ model: 'syn-generic', messages, tools, format: callSchema, options: opts });
    assert.equal(r.done, true);
    assert.equal(r.done_reason, 'stop');
    assert.equal(r.message.content, '');
    assert.equal(r.message.tool_calls?.length, 1, JSON.stringify(r.message));
    const call = r.message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(Object.keys(call.function.arguments), ['city']);
    assert.equal(typeof call.function.arguments.city, 'string');
    assert.ok([...call.function.arguments.city].length <= 12);
    // streamed: the same call, in the last parts
    const parts = [];
    for await (const p of await ollama.chat({ model: 'syn-generic', messages, tools, format: callSchema, options: opts, stream: true })) parts.push(p);
    const streamed = parts.flatMap((p) => p.message?.tool_calls || []);
    assert.deepEqual(streamed, r.message.tool_calls);
    assert.equal(parts.map((p) => p.message?.content || '').join(''), '');
    // the OpenAI endpoint, same request: the same call (arguments as a JSON string there)
    const o = await postJSON(`${srv.base}/chat/completions`, {
      model: 'syn-generic', messages, tools, temperature: 0, max_tokens: 400,
      response_format: { type: 'json_schema', json_schema: { name: 'call', schema: callSchema } },
    });
    assert.equal(o.status, 200, o.text);
    const oc = o.json.choices[0].message.tool_calls;
    assert.equal(o.json.choices[0].finish_reason, 'tool_calls');
    assert.equal(oc.length, 1);
    assert.equal(oc[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(oc[0].function.arguments), call.function.arguments);
    // the call and the tool's answer sent back: the model answers (no format this time)
    const next = await ollama.chat({
      model: 'syn-generic', tools, options: { temperature: 0, num_predict: 16 },
      messages: [...messages, r.message, { role: 'tool', content: '{"temp": 21}', tool_name: 'get_weather' }],
    });
    assert.equal(next.done, true);
    assert.equal(next.message.role, 'assistant');
  });

  test('an empty message list loads the model', async () => {
    const r = await ollama.chat({ model: 'stories260K', messages: [] });
    assert.equal(r.done_reason, 'load');
  });
});

describe('embeddings', () => {
  test('embed: the vectors of /v1/embeddings; dimensions cut and renormalised', async () => {
    const input = ['A cat sat.', 'Once upon a time'];
    const r = await ollama.embed({ model: 'stories260K', input });
    assert.equal(r.embeddings.length, 2);
    const ref = await postJSON(`${srv.base}/embeddings`, { model: 'stories260K', input });
    for (let i = 0; i < 2; i++) {
      const a = r.embeddings[i], b = ref.json.data[i].embedding;
      assert.equal(a.length, b.length);
      for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k] - b[k]) < 1e-6);
    }
    assert.ok(r.prompt_eval_count > 0);
    const d = await ollama.embed({ model: 'stories260K', input: input[0], dimensions: 8 });
    const full = ref.json.data[0].embedding.slice(0, 8);
    const norm = Math.hypot(...full);
    d.embeddings[0].forEach((x, k) => assert.ok(Math.abs(x - full[k] / norm) < 1e-6));
  });

  test('truncate: a long input is cut to the slot, or refused with truncate false', async () => {
    const long = 'word '.repeat(3000);
    const r = await ollama.embed({ model: 'stories260K', input: long });
    assert.equal(r.embeddings.length, 1);
    await assert.rejects(ollama.embed({ model: 'stories260K', input: long, truncate: false }), (e) => e.status_code === 400);
  });

  test('legacy embeddings', async () => {
    const r = await ollama.embeddings({ model: 'stories260K', prompt: 'A cat sat.' });
    const ref = await postJSON(`${srv.base}/embeddings`, { model: 'stories260K', input: 'A cat sat.' });
    assert.equal(r.embedding.length, ref.json.data[0].embedding.length);
  });
});

describe('model management', () => {
  test('ps shows loaded models; keep_alive 0 unloads', { skip: !synPath }, async () => {
    await ollama.generate({ model: 'syn-chat', prompt: '', keep_alive: '10m' });
    let ps = await ollama.ps();
    const m = ps.models.find((x) => x.name === 'syn-chat:latest');
    assert.ok(m, JSON.stringify(ps));
    const exp = Date.parse(m.expires_at) - Date.now();
    assert.ok(exp > 8 * 60e3 && exp < 11 * 60e3, `expires in ${exp} ms`);
    const u = await ollama.generate({ model: 'syn-chat', prompt: '', keep_alive: 0 });
    assert.equal(u.done_reason, 'unload');
    for (let i = 0; i < 50; i++) {
      ps = await ollama.ps();
      if (!ps.models.some((x) => x.name === 'syn-chat:latest')) break;
      await sleep(100);
    }
    assert.ok(!ps.models.some((x) => x.name === 'syn-chat:latest'), JSON.stringify(ps));
  });

  test('copy into models_dir, use, delete', { skip: !synPath }, async () => {
    await ollama.copy({ source: 'syn-chat', destination: 'mycopy:v1' });
    const file = path.join(dir, 'mycopy:v1.gguf');
    assert.ok(fs.existsSync(file));
    assert.equal(fs.statSync(file).size, fs.statSync(synPath).size);
    const { models } = await ollama.list();
    assert.ok(models.some((m) => m.name === 'mycopy:v1'));
    const r = await ollama.generate({ model: 'mycopy:v1', prompt: 'hi', options: { num_predict: 2 } });
    assert.equal(r.done, true);
    await ollama.delete({ model: 'mycopy:v1' });
    assert.ok(!fs.existsSync(file));
    assert.ok(!(await ollama.list()).models.some((m) => m.name === 'mycopy:v1'));
  });

  test('copy and delete refuse unsafe names and models outside models_dir', async () => {
    await assert.rejects(ollama.copy({ source: 'stories260K', destination: '../evil' }), (e) => e.status_code === 400);
    await assert.rejects(ollama.copy({ source: 'stories260K', destination: 'a/../../b' }), (e) => e.status_code === 400);
    await assert.rejects(ollama.delete({ model: 'stories260K' }), (e) => e.status_code === 400);
    await assert.rejects(ollama.delete({ model: 'nothing-here' }), (e) => e.status_code === 404);
    assert.ok(fs.existsSync(STORIES));
  });

  test('pull reports an unreachable registry; push and create answer a clear error', async () => {
    await assert.rejects(ollama.pull({ model: 'llama3', stream: false }),
      (e) => e.status_code === 500 && /cannot reach 127\.0\.0\.1:9/.test(e.error));
    const r = await postJSON(`${srv.url}/api/pull`, { model: 'no good name' });
    assert.equal(r.status, 400, r.text);
    await assert.rejects(ollama.push({ model: 'llama3' }), (e) => e.status_code === 501);
  });
});

describe('HTTP details', () => {
  test('curl-style bodies without a JSON Content-Type are taken when no browser sent them', async () => {
    const body = JSON.stringify({ model: 'stories260K', prompt: 'x', stream: false, options: { num_predict: 1 } });
    const a = await fetch(`${srv.url}/api/generate`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
    assert.equal(a.status, 200);
    const b = await fetch(`${srv.url}/api/generate`, { method: 'POST', headers: { 'Content-Type': 'text/plain', Origin: 'http://evil.example' }, body });
    assert.equal(b.status, 415);
    assert.equal(typeof (await b.json()).error, 'string');
  });

  test('streams are NDJSON, one object per line, stream true by default', async () => {
    const res = await fetch(`${srv.url}/api/chat`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'stories260K', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 3 } }) });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await res.text()).split('\n').filter((l) => l);
    const objs = lines.map((l) => JSON.parse(l));
    assert.equal(objs.at(-1).done, true);
    assert.ok(objs.slice(0, -1).every((o) => o.done === false));
  });

  test('a wrong method is 405 and an unknown /api/ path 404, in Ollama\'s shape', async () => {
    const a = await fetch(`${srv.url}/api/tags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(a.status, 405);
    assert.equal(typeof (await a.json()).error, 'string');
    const b = await postJSON(`${srv.url}/api/nothing`, {});
    assert.equal(b.status, 404);
    assert.equal(typeof b.json.error, 'string');
  });
});
