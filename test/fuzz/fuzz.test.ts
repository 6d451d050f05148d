// Every fuzz target for a short run with a fixed seed (the same inputs in the same order each time): every input
// is read or refused with a clear Error. And the runner catches what it is for, on readers broken on purpose.
// Longer runs: npm run fuzz -- --minutes N (test/fuzz/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzTarget } from './runner.js';
import { targets } from './targets.js';

const SECONDS = 15;
const SEED = 16_001;

for (const t of targets) {
  test(`fuzz ${t.name} for ${SECONDS} s (${t.about}): no crash, hang, unbounded allocation or unclear error`, async () => {
    const r = await fuzzTarget(t.name, { ms: SECONDS * 1000, seed: SEED });
    assert.ok(r.execs > 100, `only ${r.execs} executions`);
    assert.deepEqual(r.findings.map((f) => `${f.kind}: ${f.message.slice(0, 300)}\n  ${f.reproduce}`), []);
  });
}

test('the long runs measure line coverage of the reader: some lines, not all (V8 block counts over the children)', async () => {
  const npy = targets.find((t) => t.name === 'npy')!;
  const r = await fuzzTarget('npy', { ms: 2000, seed: SEED, coverage: npy.sources });
  const c = r.coverage!;
  assert.deepEqual(c.modules, ['torch/io/npy.js']);
  assert.ok(c.lines > 50 && c.covered > 0.3 * c.lines && c.covered < c.lines, `${c.covered} of ${c.lines} lines`);
});

test('the runner catches a native crash, a hang and an internal error, saving each input with its replay command', async () => {
  const findings = mkdtempSync(join(tmpdir(), 'swav-fuzz-findings-'));
  const module = new URL('./broken.js', import.meta.url).href;
  const run = (target: string) => fuzzTarget(target, { ms: 3000, seed: SEED, findings, module, hangMs: 2000 });
  const input = (dir: string) => readFileSync(join(dir, 'input.bin'));
  const [crash, hang, internal] = [await run('crash'), await run('hang'), await run('internal')];
  assert.equal(crash.findings[0]?.kind, 'crash');
  assert.match(crash.findings[0].message, /exit SIGABRT/);
  assert.ok(input(crash.findings[0].dir).includes(0xff), 'the input that crashed it');
  assert.equal(hang.findings[0]?.kind, 'hang');
  assert.ok(input(hang.findings[0].dir).includes(0x80), 'the input that hung it');
  assert.deepEqual(internal.findings.map((f) => f.kind), ['internal'], 'found once, then known');
  assert.match(internal.findings[0].reproduce, /^npm run fuzz -- --target internal --replay /);
  // shrunk by fast-check: the one byte that matters, the seed's 16 otherwise
  const shrunk = input(internal.findings[0].dir);
  assert.ok(shrunk.includes(0x7f) && shrunk.length <= 17, `not shrunk: ${shrunk.toString('hex')}`);
});
