// TensorBoard event files: what EventWriter writes is read back by our reader and by an independent Python one
// (test/train/check_events.py: the framing and both CRC32Cs byte by byte, the Event parsed by python3-protobuf);
// a flipped byte is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { EventWriter, readEvents } from '../../src/train/tensorboard.js';
import { python, root } from '../helpers.js';

/** The events of `file` as check_events.py reads them. */
export function pythonEvents(file: string): any[] {
  return execFileSync(python(), [join(root, 'test/train/check_events.py'), file], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('scalars, a histogram and an image: the same events for our reader and the independent Python one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-tb-'));
  const w = new EventWriter(dir);
  assert.match(w.file, /\/events\.out\.tfevents\.\d{10}\.[^/]+$/);
  const scalars = [[0.5, 1], [0.25, 2], [Math.PI, 1000]];
  for (const [v, step] of scalars) w.scalar('train/loss', v, step);
  w.histogram('train/prototype_usage', { counts: [3, 0, 7, 1] }, 2);
  const png = await sharp(Buffer.alloc(8 * 6 * 3, 200), { raw: { width: 8, height: 6, channels: 3 } }).png().toBuffer();
  w.image('crops', png, { height: 6, width: 8, channels: 3 }, 0);
  w.close();
  const ours = readEvents(w.file);
  assert.equal(ours[0].fileVersion, 'brain.Event:2');
  const theirs = pythonEvents(w.file);
  assert.deepEqual(theirs.filter((e) => 'value' in e).map((e) => [e.tag, e.step, e.value]),
    scalars.map(([v, step]) => ['train/loss', step, Math.fround(v)]));
  assert.deepEqual(theirs.find((e) => e.tag === 'train/prototype_usage').bucket, [3, 0, 7, 1]);
  assert.deepEqual(theirs.find((e) => e.tag === 'crops'), { step: 0, tag: 'crops', png_bytes: png.length, height: 6 });
  const values = ours.flatMap((e) => e.values.map((v) => ({ step: e.step, ...v })));
  assert.deepEqual(values.filter((v) => v.simpleValue !== undefined).map((v) => v.simpleValue), scalars.map(([v]) => Math.fround(v)));
  assert.ok(Buffer.from(values.find((v) => v.image)!.image!.png).equals(png));

  const bytes = readFileSync(w.file);
  bytes[bytes.length - 30] ^= 0x10;
  const bad = join(dir, 'events.out.tfevents.1.bad');
  writeFileSync(bad, bytes);
  assert.throws(() => readEvents(bad), /bad data CRC/);
  assert.throws(() => pythonEvents(bad), /data CRC/);
});
