// PyTorch checkpoints written by Debian's PyTorch: both formats, views, dtypes, conversions, hostile files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { ZipWriter } from '../../src/torch/io/zip.js';
import { largeGoldens, python, pwnedMarker } from '../helpers.js';

const dir = largeGoldens('--checkpoints', 'checkpoints');
const tmp = mkdtempSync(join(tmpdir(), 'swav-ckpt-'));

test('zip and legacy files of the same state dict load to the same tensors, "module." keys and all', () => {
  torch.tidy(() => {
    const zip = torch.load(join(dir, 'resnet18_zip.pth'));
    const legacy = torch.load(join(dir, 'resnet18_legacy.pth.tar'));
    assert.deepEqual(Object.keys(zip), Object.keys(legacy));
    assert.ok(Object.keys(zip).includes('module.projection_head.3.weight'));
    assert.ok(Object.keys(zip).includes('module.prototypes.weight'));
    for (const k of Object.keys(zip)) assert.ok(zip[k].equal(legacy[k]), k);
    assert.equal(zip['module.bn1.num_batches_tracked'].dtype, 'int64');
  });
});

test('a legacy training checkpoint: nested dicts, int keys, numpy scalars', () => {
  torch.tidy(() => {
    const c = torch.load(join(dir, 'training_checkpoint.pth.tar'));
    assert.equal(c.epoch, 5);
    assert.equal(c.best_acc, 0.75);
    assert.deepEqual(c.optimizer.state['0'].momentum_buffer.shape, [3]);
    assert.equal(c.optimizer.param_groups[0].lr, 0.6);
    assert.ok(c.state_dict['module.conv1.weight'] instanceof torch.Tensor);
  });
});

test('views into one storage come out as views, with their offsets and strides', () => {
  torch.tidy(() => {
    const m = torch.load(join(dir, 'mixed_legacy.pth.tar'));
    assert.ok(m.view.equal(m.w.index('1:3')));
    assert.ok(m.t.equal(m.w.t()));
    assert.ok(m.col.equal(m.w.index(':', 2)));
    m.w.index(1, 0).fill_(42);
    assert.equal(m.view.index(0, 0).item(), 42, 'the view shares the storage');
    assert.deepEqual([m.i64.dtype, m.f16.dtype, m.u8.dtype, m.flag.dtype], ['int64', 'float16', 'uint8', 'bool']);
  });
});

test('convert: legacy .pth.tar -> .safetensors -> .pth reads back in torch.load(weights_only=True), tensor for tensor', () => {
  const cli = (...a: string[]) => execFileSync(process.execPath, ['dist/src/cli/main.js', ...a], { stdio: 'pipe' });
  cli('convert', join(dir, 'mixed_legacy.pth.tar'), join(tmp, 'mixed.safetensors'));
  cli('convert', join(tmp, 'mixed.safetensors'), join(tmp, 'mixed.pth'));
  cli('convert', join(dir, 'mixed_legacy.pth.tar'), join(tmp, 'direct.pth'));
  const out = execFileSync(
    python(),
    [
      '-c',
      `
import torch
a = torch.load('${join(dir, 'mixed_legacy.pth.tar')}')
for f in ['${join(tmp, 'mixed.pth')}', '${join(tmp, 'direct.pth')}']:
    b = torch.load(f, weights_only=True)
    assert list(a) == list(b), (list(a), list(b))
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k
d = torch.load('${join(tmp, 'direct.pth')}', weights_only=True)
assert d['view'].storage().data_ptr() == d['w'].storage().data_ptr(), 'views share their storage'
assert d['t'].stride() == (1, 6)
print('identical')
`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(out.trim(), 'identical');
});

test('save writes .pth that torch.load(weights_only=True) reads, and .safetensors that torch reads', () => {
  torch.tidy(() => {
    const sd = { a: torch.randn([3, 4]), b: torch.arange(5, undefined, 1, { dtype: 'int64' }), c: torch.ones([2], { dtype: 'bfloat16' }) };
    torch.save(sd, join(tmp, 'ours.pth'));
    torch.save(sd, join(tmp, 'ours.safetensors'));
    const back = torch.load(join(tmp, 'ours.safetensors'));
    for (const k of Object.keys(sd)) assert.ok(back[k].equal(sd[k as keyof typeof sd]), k);
    const sums = execFileSync(
      python(),
      [
        '-c',
        `
import torch
d = torch.load('${join(tmp, 'ours.pth')}', weights_only=True)
print(round(float(d['a'].double().sum()), 4), d['b'].tolist(), d['c'].dtype)`,
      ],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(sums, `${Math.round(sd.a.double().sum().item() * 1e4) / 1e4} [0, 1, 2, 3, 4] torch.bfloat16`);
  });
});

const hostile: [string, RegExp][] = [
  ['evil_zip.pth', /refused to load: the file calls posix\.system/],
  ['evil_legacy.pth', /refused to load: the file calls posix\.system/],
  ['evil_eval.pth', /refused to load: the file calls (__builtin__|builtins)\.eval/],
  ['truncated_zip.pth', /truncated or not a zip/],
  ['truncated_legacy.pth.tar', /truncated checkpoint/],
  ['short_storage.pth', /storage 0 has \d+ bytes, its tensors need \d+/],
  ['random.pth', /not a PyTorch checkpoint/],
];

test("the hostile fixtures are real: PyTorch's unrestricted loader runs their payload", () => {
  rmSync(pwnedMarker, { force: true });
  execFileSync(python(), ['-c', `import torch; torch.load('${join(dir, 'evil_zip.pth')}')`], { stdio: 'ignore' });
  assert.ok(existsSync(pwnedMarker));
  rmSync(pwnedMarker, { force: true });
});

for (const [file, message] of hostile) {
  test(`${file} is refused with a clear error; nothing in it runs`, () => {
    const before = torch.liveTensors();
    assert.throws(
      () => torch.load(join(dir, file)),
      (e: Error) => e instanceof torch.CheckpointError && message.test(e.message),
    );
    assert.equal(torch.liveTensors(), before, 'nothing leaks from a refused file');
    assert.ok(!existsSync(pwnedMarker), 'a payload ran');
  });
}

/** Bytes of a pickle: opcodes and their arguments, strings as latin1. */
const pickle = (...parts: (number | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p, 'latin1'))));
/** A zip checkpoint holding only this data.pkl. */
function zipCheckpoint(name: string, pkl: Buffer): string {
  const zip = new ZipWriter(join(tmp, name));
  zip.add('archive/data.pkl', pkl);
  zip.close();
  return join(tmp, name);
}
const binunicode = (s: string) => `X${String.fromCharCode(s.length, 0, 0, 0)}${s}`;

test('fuzz findings: corrupt pickles are refused as corrupt, naming what the file holds (no TypeError, NaN or [object Map])', () => {
  const refused = (path: string, message: RegExp) => {
    assert.throws(
      () => torch.load(path),
      (e: Error) => e instanceof torch.CheckpointError && e.message.startsWith(path) && message.test(e.message),
    );
  };
  const plain = (name: string, ...parts: (number | string)[]) => {
    writeFileSync(join(tmp, name), pickle(0x80, 2, ...parts));
    return join(tmp, name);
  };
  // a string that is not UTF-8 leaked TextDecoder's TypeError
  refused(plain('utf8.pth', 0x58, '\x01\0\0\0\xff', 0x2e), /a string that is not UTF-8 at offset 7/);
  // a text GET / PUT / INT without a number: 'pickle memo has no entry NaN', or NaN read as a number
  refused(plain('get.pth', 0x67, 'x\n', 0x2e), /GET with "x" for a number/);
  refused(plain('put.pth', 0x4e, 0x70, '1e3\n', 0x2e), /PUT with "1e3" for a number/);
  refused(plain('int.pth', 0x49, 'twelve\n', 0x2e), /INT with "twelve" for a number/);
  // ('storage', {}, '0', 'cpu', 1) and ('storage', torch.FloatStorage, '0', 'cpu', {}): '[object Map]'
  const pid = (type: (number | string)[], size: (number | string)[]) =>
    pickle(0x80, 2, 0x28, binunicode('storage'), ...type, binunicode('0'), binunicode('cpu'), ...size, 0x74, 0x51, 0x2e);
  refused(zipCheckpoint('type.pth', pid([0x7d], [0x4b, 1])), /unsupported storage type a dict/);
  refused(zipCheckpoint('size.pth', pid([0x63, 'torch\nFloatStorage\n'], [0x7d])), /corrupt checkpoint: storage size is a dict/);
  refused(
    zipCheckpoint('pid.pth', pickle(0x80, 2, 0x28, binunicode('storage'), 0x4e, 0x5d, 0x74, 0x51, 0x2e)),
    /unexpected persistent id tuple \("storage", None, a list of 0\)/,
  );
  assert.ok(torch.load(plain('ok.pth', 0x49, '01\n', 0x2e)), 'INT 01 is True');
});

test('broken .safetensors files are refused', () => {
  const bad = (name: string, bytes: Buffer) => {
    writeFileSync(join(tmp, name), bytes);
    return join(tmp, name);
  };
  const header = (h: object) => {
    const j = Buffer.from(JSON.stringify(h));
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([n, j]);
  };
  assert.throws(() => torch.load(bad('a.safetensors', Buffer.from([1, 2, 3]))), /too short/);
  assert.throws(
    () =>
      torch.load(
        bad('b.safetensors', Buffer.concat([header({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), Buffer.alloc(8)])),
      ),
    /lies outside the file/,
  );
  assert.throws(
    () =>
      torch.load(bad('c.safetensors', Buffer.concat([header({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 8] } }), Buffer.alloc(8)]))),
    /needs 16 bytes/,
  );
  assert.throws(
    () =>
      torch.load(bad('d.safetensors', Buffer.concat([header({ x: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }), Buffer.alloc(1)]))),
    /unsupported dtype/,
  );
});

test('fuzz findings: safetensors entries without a dtype, not objects, or with a dimension past 2^53 are refused by name', () => {
  const header = (h: string) => {
    const j = Buffer.from(h);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([n, j]);
  };
  const refused = (name: string, json: string, message: RegExp) => {
    writeFileSync(join(tmp, name), header(json));
    assert.throws(
      () => torch.load(join(tmp, name)),
      (e: Error) => e instanceof torch.SafetensorsError && e.message.startsWith(join(tmp, name)) && message.test(e.message),
    );
  };
  // a misspelled __metadata__ is a tensor without a dtype (the message said 'unsupported dtype undefined')
  refused('e.safetensors', '{"__metadato__":{"format":"pt"}}', /tensor __metadato__ has no dtype$/);
  refused('f.safetensors', '{"x":7}', /tensor x is not an object of dtype, shape and data_offsets/);
  refused('g.safetensors', '{"__metadata__":[1]}', /__metadata__ is not an object of strings/);
  // no data needed, so it reached view() and the addon's RangeError
  refused('h.safetensors', '{"x":{"dtype":"F32","shape":[18446744073709551616,0],"data_offsets":[0,0]}}', /tensor x has a bad shape/);
});
