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


// ---- a throwaway PostgreSQL cluster ----------------------------------------------------------
// initdb in a temporary directory, a free port on 127.0.0.1, the unix socket in that directory;
// started, restarted, killed and stopped by the test. initdb and postgres refuse to run as root:
// when the test runs as root, they run as `nobody` (runuser) in a directory chowned to it.
// Binaries: $INFERNO_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin.
export const PG_BIN = (() => {
  if (process.env.INFERNO_PG_BIN) return process.env.INFERNO_PG_BIN;
  const base = '/usr/lib/postgresql';
  let vs = [];
  try { vs = fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'pg_ctl'))); } catch { /* none */ }
  vs.sort((a, b) => Number(a) - Number(b));
  return vs.length ? path.join(base, vs[vs.length - 1], 'bin') : null;
})();

function asUser(cmd, args) {
  return process.geteuid?.() === 0 ? ['runuser', ['-u', 'nobody', '--', cmd, ...args]] : [cmd, args];
}

export async function startPostgres(dir) {
  const root = path.join(dir, 'pg');
  fs.mkdirSync(root, { recursive: true });
  if (process.geteuid?.() === 0) {
    fs.chmodSync(dir, 0o755);
    spawnSync('chown', ['nobody', root]);
  }
  const run = (cmd, args) => {
    const [c, a] = asUser(path.join(PG_BIN, cmd), args);
    const r = spawnSync(c, a, { encoding: 'utf8' });
    return r;
  };
  const init = run('initdb', ['-D', path.join(root, 'data'), '-U', 'inferno', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  assert.equal(init.status, 0, `initdb: ${init.stderr}`);
  const port = await freePort();
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
  const ctl = (...args) => run('pg_ctl', ['-D', path.join(root, 'data'), '-l', path.join(root, 'log'), '-w', '-t', '60', '-o', opts, ...args]);
  const st = ctl('start');
  assert.equal(st.status, 0, `pg_ctl start: ${st.stderr} ${fs.existsSync(path.join(root, 'log')) ? fs.readFileSync(path.join(root, 'log'), 'utf8') : ''}`);
  const pid = () => Number(fs.readFileSync(path.join(root, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url: `postgresql://inferno@127.0.0.1:${port}/postgres`,
    port,
    restart() { const r = ctl('-m', 'fast', 'restart'); assert.equal(r.status, 0, `pg_ctl restart: ${r.stderr}`); },
    // a crash: SIGKILL to the postmaster and every process it started (by pid, from /proc)
    kill9() {
      const pm = pid();
      const kids = [];
      for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
          if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pm) kids.push(Number(d));
        } catch { /* gone */ }
      }
      for (const p of [pm, ...kids]) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    },
    // start again after kill9 (crash recovery replays the WAL)
    start() {
      for (let i = 0; i < 50; i++) {
        const r = ctl('start');
        if (r.status === 0) return;
        spawnSync('sleep', ['0.2']);
      }
      assert.fail(`postgres did not start again: ${fs.readFileSync(path.join(root, 'log'), 'utf8').slice(-2000)}`);
    },
    stop() { ctl('-m', 'immediate', 'stop'); },
  };
}

// The batch requests a replica ran (inferno_batch_requests_total, outcome ok), all endpoints.
export async function batchCount(srv) {
  const m = await (await fetch(`${srv.url}/metrics`)).text();
  let n = 0;
  for (const line of m.split('\n'))
    if (line.startsWith('inferno_batch_requests_total{') && line.includes('outcome="ok"')) n += Number(line.split(' ').pop());
  return n;
}
