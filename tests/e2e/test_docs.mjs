// The docs are generated from, or checked against, the code's own tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HARK } from './lib.mjs';

const SRC = process.env.HARK_SRC || path.resolve('../..');
const doc = (name) => readFileSync(path.join(SRC, 'docs', name), 'utf8');

test('docs/configuration.md holds exactly the config table of the binary', () => {
  const table = execFileSync(HARK, ['serve', '--config-markdown'], { encoding: 'utf8' });
  const md = doc('configuration.md');
  const m = md.match(/<!-- BEGIN generated: hark serve --config-markdown -->\n([\s\S]*?)<!-- END generated -->/);
  assert.ok(m, 'generated block markers missing');
  assert.equal(m[1], table, 'regenerate docs/configuration.md from `hark serve --config-markdown`');
});

test('every session option is documented in the protocol and the CLI docs', () => {
  const help = execFileSync(HARK, ['transcribe', '--help'], { encoding: 'utf8' });
  const names = [...help.matchAll(/^  --([a-z-]+)\s/gm)].map((x) => x[1]);
  const proto = doc('protocol.md'), cli = doc('cli.md');
  const options = help.split('session options')[1];
  for (const flag of [...options.matchAll(/^  --([a-z-]+)\s/gm)].map((x) => x[1])) {
    const key = flag.replaceAll('-', '_');
    assert.ok(proto.includes('`' + key + '`'), `docs/protocol.md lacks \`${key}\``);
    assert.ok(cli.includes('--' + flag), `docs/cli.md lacks --${flag}`);
  }
  assert.ok(names.includes('json'));
});

test('serve --help lists every flag of the config table', () => {
  const help = execFileSync(HARK, ['serve', '--help'], { encoding: 'utf8' });
  const table = execFileSync(HARK, ['serve', '--config-markdown'], { encoding: 'utf8' });
  for (const m of table.matchAll(/\| `--([a-z-]+)` \|/g)) assert.ok(help.includes('--' + m[1]), m[1]);
});
