// Helpers for the tests that drive `hark transcribe` (test_transcribe.mjs,
// test_accuracy.mjs): bounded child processes two at a time, the --json line
// format checker, and transcript normalisation for word error rates.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { HARK } from './lib.mjs';

// At most two child processes at a time (the machine has 2 cores); callers
// may start many and await them together.
let running = 0;
const waiting = [];
async function slot(fn) {
  while (running >= 2) await new Promise((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

// Runs cmd to completion (killed after timeoutMs). input: a Buffer for
// stdin, or an async function (stdin) => {} that writes and ends it.
// Resolves { code, signal, stdout, stderr, ms }.
export function run(cmd, args, { input = null, timeoutMs = 90000, env } = {}) {
  return slot(() => new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, {
      stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: env ? { ...process.env, ...env } : process.env,
    });
    let out = '', err = '';
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: err, ms: Date.now() - t0 });
    });
    if (input) {
      p.stdin.on('error', () => {}); // EPIPE when hark exits early is reported by its status
      if (typeof input === 'function') input(p.stdin).catch(() => p.stdin.destroy());
      else p.stdin.end(input);
    }
  }));
}

export const hark = (args, opts) => run(HARK, args, opts);

// Lower case, no punctuation, variant markers word(2) removed, and a few
// spellings that are not recognition errors mapped to the references' form.
export function norm(s) {
  return s.toLowerCase()
    .replace(/\(\d+\)/g, ' ')
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/).filter(Boolean)
    .map((w) => (w === 'mr' ? 'mister' : w === 'mrs' ? 'missus' : w))
    .join(' ');
}

// Text of the non-empty finals, in order.
export const finalsOf = (events) => events
  .filter((e) => e.type === 'transcript' && e.is_final && e.text)
  .map((e) => e.text).join(' ');

// Validates `hark transcribe --json` output and returns the events: one JSON
// object per line, seq 0..n-1, transcript fields, segment numbering, finals
// with committed_ms and words matching their text, last line "closed".
export function checkJsonLines(stdout, what) {
  assert.ok(stdout.length > 0, `${what}: no output`);
  assert.ok(stdout.endsWith('\n'), `${what}: output does not end with a newline`);
  const events = stdout.slice(0, -1).split('\n').map((l, i) => {
    let e;
    try {
      e = JSON.parse(l);
    } catch (x) {
      throw new Error(`${what}: line ${i + 1} is not JSON: ${l.slice(0, 200)} (${x.message})`);
    }
    assert.ok(e && typeof e === 'object' && !Array.isArray(e),
      `${what}: line ${i + 1} is not one JSON object: ${l.slice(0, 200)}`);
    return e;
  });
  let seg = 0, lastCommit = -1;
  events.forEach((e, i) => {
    assert.equal(e.seq, i, `${what}: seq ${e.seq} on line ${i + 1}`);
    assert.equal(typeof e.type, 'string', `${what}: line ${i + 1} has no type`);
    if (e.type !== 'transcript') return;
    for (const k of ['segment', 'is_final', 'text', 'start', 'end', 'confidence', 'words'])
      assert.ok(k in e, `${what}: transcript seq ${e.seq} lacks ${k}`);
    assert.equal(e.segment, seg, `${what}: segment numbering at seq ${e.seq}`);
    assert.equal(typeof e.is_final, 'boolean');
    assert.equal(typeof e.text, 'string');
    assert.ok(e.start <= e.end, `${what}: start > end at seq ${e.seq}`);
    assert.ok(e.confidence >= 0 && e.confidence <= 1, `${what}: confidence ${e.confidence}`);
    assert.ok(Array.isArray(e.words));
    if (!e.is_final) {
      assert.ok(e.text.length > 0, `${what}: empty partial at seq ${e.seq}`);
      assert.ok(!('committed_ms' in e), `${what}: partial with committed_ms`);
      return;
    }
    assert.equal(typeof e.committed_ms, 'number', `${what}: final seq ${e.seq} lacks committed_ms`);
    assert.ok(e.committed_ms >= lastCommit, `${what}: committed_ms went backwards`);
    lastCommit = e.committed_ms;
    assert.equal(e.text, e.words.map((w) => w.word).join(' '), `${what}: final text vs its words`);
    for (const w of e.words) {
      assert.ok(w.start <= w.end && w.start >= e.start - 0.05 && w.end <= e.end + 0.05,
        `${what}: word ${JSON.stringify(w)} outside its segment [${e.start}, ${e.end}]`);
      assert.ok(w.confidence >= 0 && w.confidence <= 1);
    }
    seg++;
  });
  const last = events[events.length - 1];
  assert.equal(last.type, 'closed', `${what}: last line is ${JSON.stringify(last)}`);
  assert.equal(last.segments, seg, `${what}: closed.segments vs finals seen`);
  return events;
}
