// TensorBoard event files: what EventWriter writes is read back by our reader and by an independent Python one
// (test/train/check_events.py: the framing and both CRC32Cs byte by byte, the Event parsed by python3-protobuf);
// a flipped byte is caught; a training run's event files hold metrics.jsonl's values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { EventWriter, readEvents } from '../../src/train/tensorboard.js';
import { idxDataset, python, root } from '../helpers.js';

/** The events of `file` as check_events.py reads them. */
export function pythonEvents(file: string): any[] {
  return execFileSync(python(), [join(root, 'test/train/check_events.py'), file], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

test('scalars, a histogram and an image: the same events for our reader and the independent Python one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-tb-'));
  const w = new EventWriter(dir);
  assert.match(w.file, /\/events\.out\.tfevents\.\d{10}\.[^/]+$/);
  const scalars = [
    [0.5, 1],
    [0.25, 2],
    [Math.PI, 1000],
  ];
  for (const [v, step] of scalars) w.scalar('train/loss', v, step);
  w.histogram('train/prototype_usage', { counts: [3, 0, 7, 1] }, 2);
  const png = await sharp(Buffer.alloc(8 * 6 * 3, 200), { raw: { width: 8, height: 6, channels: 3 } })
    .png()
    .toBuffer();
  w.image('crops', png, { height: 6, width: 8, channels: 3 }, 0);
  w.close();
  const ours = readEvents(w.file);
  assert.equal(ours[0].fileVersion, 'brain.Event:2');
  const theirs = pythonEvents(w.file);
  assert.deepEqual(
    theirs.filter((e) => 'value' in e).map((e) => [e.tag, e.step, e.value]),
    scalars.map(([v, step]) => ['train/loss', step, Math.fround(v)]),
  );
  assert.deepEqual(theirs.find((e) => e.tag === 'train/prototype_usage').bucket, [3, 0, 7, 1]);
  assert.deepEqual(
    theirs.find((e) => e.tag === 'crops'),
    { step: 0, tag: 'crops', png_bytes: png.length, height: 6 },
  );
  const values = ours.flatMap((e) => e.values.map((v) => ({ step: e.step, ...v })));
  assert.deepEqual(
    values.filter((v) => v.simpleValue !== undefined).map((v) => v.simpleValue),
    scalars.map(([v]) => Math.fround(v)),
  );
  assert.ok(Buffer.from(values.find((v) => v.image)!.image!.png).equals(png));

  const bytes = readFileSync(w.file);
  bytes[bytes.length - 30] ^= 0x10;
  const bad = join(dir, 'events.out.tfevents.1.bad');
  writeFileSync(bad, bytes);
  assert.throws(() => readEvents(bad), /bad data CRC/);
  assert.throws(() => pythonEvents(bad), /data CRC/);
});

test("a training run writes an event file whose scalars are metrics.jsonl's; a resumed run adds a file that goes on", () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-tb-run-'));
  const data = idxDataset(join(dir, 'idx'), 6);
  const config = join(dir, 'tiny.yaml');
  writeFileSync(
    config,
    `
data: { type: idx, path: ${data}, eval_split: train, eval_train_split: train }
crops: { nmb_crops: [2, 2], size_crops: [12, 8], min_scale_crops: [0.4, 0.1], max_scale_crops: [1, 0.4], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: 6 }
swav: { queue_length: 0 }
optim: { epochs: 2, batch_size: 8, warmup_epochs: 0 }
run: { threads: 1, log_every: 2, knn_eval: true, knn_k: 5, out: ${join(dir, 'run')} }
`,
  );
  const cli = join(root, 'dist/src/cli/main.js');
  const run = (...more: string[]) => {
    const r = spawnSync(process.execPath, [cli, 'train', '--config', config, ...more], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  run('run.stop_after_epochs=1');
  run();
  const files = readdirSync(join(dir, 'run'))
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort();
  assert.equal(files.length, 2, 'a file per start');
  const fromPython = files.flatMap((f) => pythonEvents(join(dir, 'run', f)));
  const ours = files.flatMap((f) => readEvents(join(dir, 'run', f)).flatMap((e) => e.values.map((v) => ({ step: e.step, ...v }))));
  const metrics = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const expected = [
    ...metrics
      .filter((m) => m.type === 'train')
      .flatMap((m) =>
        ['loss', 'lr', 'samples_per_s', 'data_wait_s', 'prototype_entropy'].map((k) => [`train/${k}`, m.iteration, Math.fround(m[k])]),
      ),
    ...metrics
      .filter((m) => m.type === 'epoch')
      .flatMap((m) => ['loss', 'seconds', 'skipped_images'].map((k) => [`epoch/${k}`, m.epoch, Math.fround(m[k])])),
    ...metrics
      .filter((m) => m.type === 'eval' && typeof m.value === 'number')
      .map((m) => [`eval/${m.metric}`, m.epoch, Math.fround(m.value)]),
  ].sort();
  const scalars = (rows: any[], value: string) =>
    rows
      .filter((e) => typeof e[value] === 'number')
      .map((e) => [e.tag, e.step, e[value]])
      .sort();
  assert.deepEqual(scalars(fromPython, 'value'), expected);
  assert.deepEqual(scalars(ours, 'simpleValue'), expected);
  const usage = fromPython.filter((e) => e.tag === 'epoch/prototype_usage');
  assert.deepEqual(
    usage.map((e) => e.step),
    [1, 2],
  );
  assert.deepEqual(
    usage.map((e) => e.bucket),
    metrics.filter((m) => m.type === 'epoch').map((m) => m.prototype_usage),
  );
  assert.equal(fromPython.filter((e) => e.tag === 'train/crops').length, 1, "the first batch's crops, once");
});
