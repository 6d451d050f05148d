// Every fuzz target for a short run with a fixed seed (the same inputs in the same order each time): every input
// is read or refused with a clear Error. Then the targets whose reader is JavaScript for a shorter run of Jazzer.js
// (coverage-guided; jpeg's decoding is native code, which it does not see). And both runners catch what they are
// for, on readers broken on purpose. Longer runs: npm run fuzz -- --minutes N (test/fuzz/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { pack, unpack, writeInput, zipEntries } from './bytes.js';
import { jazzerAddon } from './jazzer-addon.js';
import { jazzerTarget } from './jazzer-run.js';
import { fuzzTarget } from './runner.js';
import { targets } from './targets.js';

const SECONDS = 15;
const SEED = 16_001;

for (const t of targets) {
  test(`fuzz ${t.name} for ${SECONDS} s (${t.about}): no crash, hang, unbounded allocation or unclear error`, async () => {
    const r = await fuzzTarget(t.name, { ms: SECONDS * 1000, seed: SEED });
    assert.ok(r.execs > 100, `only ${r.execs} executions`);
    assert.deepEqual(
      r.findings.map((f) => `${f.kind}: ${f.message.slice(0, 300)}\n  ${f.reproduce}`),
      [],
    );
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
  assert.deepEqual(
    internal.findings.map((f) => f.kind),
    ['internal'],
    'found once, then known',
  );
  assert.match(internal.findings[0].reproduce, /^npm run fuzz -- --target internal --replay /);
  // shrunk by fast-check: the one byte that matters, the seed's 16 otherwise
  const shrunk = input(internal.findings[0].dir);
  assert.ok(shrunk.includes(0x7f) && shrunk.length <= 17, `not shrunk: ${shrunk.toString('hex')}`);
});

test("Jazzer.js's bytes: a target's files packed and back, names not the target's dropped, a zip given by its entries written as a zip", () => {
  const names = ['a.bin', 'b.bin'];
  const files = { 'a.bin': Buffer.from('images'), 'b.bin': Buffer.from([0, 1, 2]) };
  const packed = pack(files, names);
  assert.deepEqual(unpack(packed, names), files);
  assert.deepEqual(unpack(Buffer.concat([packed, Buffer.from('\n@swav-file ../x\nevil')]), names), files);
  assert.deepEqual(unpack(packed, ['input.npy']), { 'input.npy': packed }, 'one file: the bytes as they are');
  const dir = mkdtempSync(join(tmpdir(), 'swav-fuzz-bytes-'));
  torch.tidy(() => torch.save({ w: torch.ones([2]) }, join(dir, 'seed.pth')));
  const entries = zipEntries(readFileSync(join(dir, 'seed.pth')), dir)!;
  assert.ok(entries.includes('@swav-entry ') && entries.includes('data.pkl'));
  writeInput(join(dir, 'input'), { 'input.pth': entries });
  torch.tidy(() => assert.deepEqual(torch.load(join(dir, 'input', 'input.pth')).w.tolist(), [1, 1]));
  assert.equal(zipEntries(Buffer.from('not a zip'), dir), undefined);
});

// Jazzer.js where its native addon loads (jazzer-addon.ts), else these say why they were skipped.
const JAZZER_SECONDS = 10;
// (stl10 left to the long runs: its 27 KB of images take libFuzzer's mutations from its labels; jpeg's decoding is native)
const JAZZER_TARGETS = ['npy', 'safetensors', 'torch', 'idx', 'cifar', 'config'];
let noJazzer: string | false = false;
try {
  jazzerAddon();
} catch (e) {
  noJazzer = (e as Error).message;
}

for (const t of targets.filter((x) => JAZZER_TARGETS.includes(x.name))) {
  test(`Jazzer.js on ${t.name} for ${JAZZER_SECONDS} s, coverage-guided by ${t.sources.map((s) => `${s}.js`).join(', ')}: no finding`, {
    skip: noJazzer,
  }, async () => {
    const r = await jazzerTarget(t.name, { ms: JAZZER_SECONDS * 1000, seed: SEED });
    assert.ok(r.execs > 100, `only ${r.execs} executions`);
    const j = r.jazzer!;
    assert.ok(j.instrumented > 0 && j.edges > 0 && j.edges <= j.instrumented, `${j.edges} of ${j.instrumented} edges`);
    assert.deepEqual(
      r.findings.map((f) => `${f.kind}: ${f.message.slice(0, 300)}\n  ${f.reproduce}`),
      [],
    );
  });
}

test('the Jazzer.js runner finds an internal error once, its input saved with its replay command', { skip: noJazzer }, async () => {
  const findings = mkdtempSync(join(tmpdir(), 'swav-jazzer-findings-'));
  const module = new URL('./broken.js', import.meta.url).href;
  const r = await jazzerTarget('internal', { ms: 4000, seed: SEED, findings, module });
  assert.deepEqual(
    r.findings.map((f) => f.kind),
    ['internal'],
    'found once, then known',
  );
  assert.match(r.findings[0].reproduce, /^npm run fuzz -- --target internal --replay /);
  assert.ok(readFileSync(join(r.findings[0].dir, 'input.bin')).includes(0x7f));
  assert.ok(r.jazzer!.instrumented > 0, 'broken.js instrumented');
});
