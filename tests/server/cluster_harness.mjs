// cluster_harness.mjs - nginx in front of replicas for the cluster test and bench/cluster-affinity.mjs:
// tests/cluster/nginx.conf.in filled in and started in a temporary directory, free ports, the
// replicas' request counters and nginx's access log (which replica served what).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p)) ?? null;

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export async function startNginx(dir, ports) {
  const conf = fs.readFileSync(path.join(HERE, '..', 'cluster', 'nginx.conf.in'), 'utf8');
  const port = await freePort(), portAff = await freePort();
  const servers = ports.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n        ');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o777 });
  fs.chmodSync(dir, 0o777);
  const text = conf.replaceAll('@DIR@', dir).replaceAll('@SERVERS@', servers)
    .replaceAll('@PORT_AFFINITY@', String(portAff)).replaceAll('@PORT@', String(port))
    .replaceAll('@MAX_BODY@', '8m');
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, text);
  const t = spawnSync(NGINX, ['-t', '-c', file, '-p', dir], { encoding: 'utf8' });
  assert.equal(t.status, 0, `nginx -t: ${t.stderr}`);
  const proc = spawn(NGINX, ['-c', file, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  // ready when it answers
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    await sleep(100);
  }
  return { proc, url: `http://127.0.0.1:${port}`, urlAff: `http://127.0.0.1:${portAff}`, log: () => err };
}

export function accessLog(dir) {
  try { return fs.readFileSync(path.join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean); } catch { return []; }
}

export async function routeCount(srv, route) {
  const m = await (await fetch(`${srv.url}/metrics`)).text();
  let n = 0;
  for (const line of m.split('\n')) {
    if (line.startsWith('inferno_requests_total{') && line.includes(`route="${route}"`) && line.includes('status="200"'))
      n += Number(line.split(' ').pop());
  }
  return n;
}

