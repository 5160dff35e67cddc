// What the NATS tests share: a free loopback port, a real nats-server started
// on it (optionally from a config file, e.g. with JetStream), and a real
// `hark worker` that resolves once it says it is connected. Every wait is
// bounded; stop() is idempotent.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import path from 'node:path';
import { connect } from 'nats';
import { HARK, sleep, stopProcess } from './lib.mjs';

export const NATS_SERVER = process.env.NATS_SERVER_BIN || '/usr/sbin/nats-server';

// Worker settings for tests: 2 threads, admission off (a loaded CI machine
// must not make starts fail).
export const WORKER_ARGS = ['--workers', '2', '--max-busy-percent', '100', '--max-lag-ms', '60000'];

export async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// nats-server on 127.0.0.1:port (or as `conf` says), its log in dir when
// given. Ready = a client connects (and, with jetstream, JetStream answers).
export async function startNats(port, { dir, conf, jetstream = false } = {}) {
  const args = conf ? ['-c', conf] : ['-a', '127.0.0.1', '-p', String(port)];
  if (dir) args.push('-l', path.join(dir, `nats-${port}-${Date.now()}.log`));
  const proc = spawn(NATS_SERVER, args, { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  for (const end = Date.now() + 15000; ;) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited ${proc.exitCode}`);
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 500 });
      if (jetstream) await nc.jetstreamManager();
      await nc.close();
      break;
    } catch (e) {
      if (Date.now() > end) throw new Error('nats-server did not start: ' + e.message);
      await sleep(50);
    }
  }
  return {
    proc, url,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await once(proc, 'exit');
    },
  };
}

// `hark worker --nats-url url ...args`; resolves when its banner says it is
// connected (60 s at most).
export async function startWorker(url, args = [], env = {}) {
  const proc = spawn(HARK, ['worker', '--nats-url', url, ...args], {
    env: { ...process.env, HARK_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker did not start:\n' + err)), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/worker on NATS \S+ \(connected\)/.test(out)) { clearTimeout(timer); resolve(); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`worker exited ${code}:\n${err}`)); });
  });
  return {
    proc,
    log: () => err,
    stdout: () => out,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    async stop(signal = 'SIGTERM') {
      return stopProcess(proc, signal);
    },
  };
}
