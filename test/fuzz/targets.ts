// The fuzz targets: every reader of untrusted bytes, through its public entry point, with real files as seeds.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { torch } from '../../src/index.js';
import { openDataset, type TensorDataset } from '../../src/data/datasets.js';
import { decodeRGB, type RGB } from '../../src/data/decode.js';
import { loadConfig } from '../../src/train/config.js';
import { saveSafetensors } from '../../src/torch/io/safetensors.js';
import { goldenDir, idxDataset, largeGoldens, root } from '../helpers.js';
import type { Field, Format, Seed } from './mutate.js';

export interface Target extends Format {
  name: string;
  /** The reader and its entry point, in a few words. */
  about: string;
  seeds(): Promise<Seed[]>;
  /** Calls the reader on the files of `dir` (as a seed names them). */
  read(dir: string): unknown;
  /** A message when a returned value is wrong (a dataset whose labels do not match its images, ...). */
  check?(value: any): string | undefined;
  /** The entry point's errors name the file or folder read. */
  namesPath: boolean;
  /** Messages that betray a value the reader never filled in (default: NaN, undefined, [object ...]). */
  unclear?: RegExp;
  /** The reader's modules (paths under src/, without extension), for the long runs' line coverage. */
  sources: string[];
  /** Where the format itself bounds memory and time above execute.ts's defaults. */
  limits?: { bytes?: number; ms?: number };
}

/** Seeds written by our own writers, read back as bytes. */
function written(make: (dir: string) => void): Record<string, Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'swav-fuzz-seed-'));
  try {
    make(dir);
    return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Small files of a directory (seeds must be quick to mutate and read). */
function filesOf(dir: string, pattern: RegExp, as: string, maxBytes = 64 << 10): Seed[] {
  return readdirSync(dir)
    .filter((f) => pattern.test(f) && statSync(join(dir, f)).size <= maxBytes)
    .sort()
    .map((f) => ({ name: f, files: { [as]: readFileSync(join(dir, f)) } }));
}

const gz = (files: Record<string, Uint8Array>) => Object.fromEntries(Object.entries(files).map(([k, v]) => [`${k}.gz`, gzipSync(v)]));

/** A .npy file of version 1 as version 2 (a 4-byte header length). */
function npyV2(b: Uint8Array): Uint8Array {
  const out = Buffer.concat([b.subarray(0, 8), Buffer.alloc(4), b.subarray(10)]);
  out[6] = 2;
  out.writeUInt32LE(b[8] | (b[9] << 8), 8);
  return out;
}

const u16le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);

/** Every dataset reader returns images and labels that agree. */
function datasetCheck(classes?: number) {
  return (d: TensorDataset): string | undefined => {
    if (d.images.shape[0] !== d.length || d.labels.length !== d.length) {
      return `${d.length} samples, ${d.images.shape[0]} images, ${d.labels.length} labels`;
    }
    const bad = classes === undefined ? -1 : d.labels.findIndex((l) => l < -1 || l >= classes);
    return bad >= 0 ? `label ${d.labels[bad]} of sample ${bad} is not among ${classes} classes` : undefined;
  };
}

// ---------------------------------------------------------------------------------------------- formats

/** The length and count fields of a zip archive's records, found by their signatures. */
function zipFields(_: string, b: Uint8Array): Field[] {
  const out: Field[] = [];
  const f = (at: number, width: Field['width']) => out.push({ at, width, le: true });
  for (let p = 0; p + 4 <= b.length; p++) {
    if (b[p] !== 0x50 || b[p + 1] !== 0x4b) continue;
    const sig = (b[p + 2] << 8) | b[p + 3];
    if (sig === 0x0304) {
      f(p + 18, 4);
      f(p + 22, 4);
      f(p + 26, 2);
      f(p + 28, 2);
    } else if (sig === 0x0102) {
      f(p + 20, 4);
      f(p + 24, 4);
      f(p + 28, 2);
      f(p + 30, 2);
      f(p + 32, 2);
      f(p + 42, 4);
      f(p + 10, 2);
    } else if (sig === 0x0506) {
      f(p + 8, 2);
      f(p + 10, 2);
      f(p + 12, 4);
      f(p + 16, 4);
    } else if (sig === 0x0606) {
      f(p + 24, 8);
      f(p + 32, 8);
      f(p + 40, 8);
      f(p + 48, 8);
    } else if (sig === 0x0607) f(p + 8, 8);
  }
  return out;
}

/** Frame dimensions and components first (fast-check favours small indices), then segment lengths and tables. */
function jpegFields(_: string, b: Uint8Array): Field[] {
  const frame: Field[] = [];
  const out: Field[] = [];
  const f = (at: number, width: 1 | 2 | 4, list = out) => list.push({ at, width, le: false });
  for (let at = 2; at + 4 <= b.length && b[at] === 0xff; ) {
    const m = b[at + 1];
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      at += 2;
      continue;
    }
    f(at + 2, 2);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      // height and width, both at once, precision, components, their sampling factors and tables
      f(at + 5, 2, frame);
      f(at + 7, 2, frame);
      f(at + 5, 4, frame);
      f(at + 4, 1, frame);
      f(at + 9, 1, frame);
      for (let c = 0; c < b[at + 9] && c < 4; c++) {
        f(at + 11 + 3 * c, 1, frame);
        f(at + 12 + 3 * c, 1, frame);
      }
    } else if (m === 0xc4) {
      f(at + 4, 1);
      for (let i = 0; i < 16; i++) f(at + 5 + i, 1);
    } else if (m === 0xdb || m === 0xdd) {
      f(at + 4, m === 0xdd ? 2 : 1);
    } else if (m === 0xda) {
      f(at + 4, 1);
      for (let i = 0; i < 2 * b[at + 4] + 3 && i < 11; i++) f(at + 5 + i, 1);
      break; // entropy-coded data follows
    }
    at += 2 + ((b[at + 2] << 8) | b[at + 3]);
  }
  return [...frame, ...out];
}

/** Pickle opcodes the unpickler knows (and a few it refuses). */
const PICKLE_OPCODES = [
  0x80, 0x95, 0x2e, 0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x8a, 0x8b, 0x47, 0x49, 0x4c, 0x46, 0x58, 0x8c, 0x8d, 0x56,
  0x55, 0x54, 0x53, 0x43, 0x42, 0x8e, 0x96, 0x29, 0x85, 0x86, 0x87, 0x74, 0x5d, 0x6c, 0x61, 0x65, 0x7d, 0x64, 0x73, 0x75, 0x8f, 0x90, 0x91,
  0x68, 0x6a, 0x67, 0x71, 0x72, 0x70, 0x94, 0x63, 0x93, 0x52, 0x81, 0x92, 0x69, 0x6f, 0x62, 0x51, 0x50, 0x82, 0x97,
];

// ---------------------------------------------------------------------------------------------- targets

const npy: Target = {
  name: 'npy',
  about: 'torch.load of a .npy file (src/torch/io/npy.ts)',
  sources: ['torch/io/npy'],
  async seeds() {
    const seeds = filesOf(join(goldenDir, 'npy'), /\.npy$/, 'input.npy');
    const f32 = seeds.find((s) => s.name === 'float32.npy')!;
    return [...seeds, { name: 'float32-v2.npy', files: { 'input.npy': npyV2(f32.files['input.npy']) } }];
  },
  read: (dir) => torch.load(join(dir, 'input.npy')),
  fields: (_, b) => [
    { at: 6, width: 1, le: true },
    { at: 8, width: b[6] === 1 ? 2 : 4, le: true },
  ],
  text: (_, b) => (b.length < 12 ? undefined : b[6] === 1 ? [10, 10 + u16le(b, 8)] : [12, 12 + Buffer.from(b).readUInt32LE(8)]),
  namesPath: true,
};

const safetensors: Target = {
  name: 'safetensors',
  about: 'torch.load of a .safetensors file (src/torch/io/safetensors.ts)',
  sources: ['torch/io/safetensors'],
  async seeds() {
    const mk = (name: string, make: () => Record<string, torch.Tensor>, metadata?: Record<string, string>): Seed => ({
      name,
      files: written((dir) => torch.tidy(() => saveSafetensors(make(), join(dir, 'input.safetensors'), metadata))),
    });
    return [
      mk(
        'mixed',
        () => ({
          w: torch.randn([2, 3]),
          i: torch.arange(0, 4, 1, { dtype: 'int64' }),
          b: torch.ones([3], { dtype: 'bool' }),
          h: torch.randn([2]).to('float16'),
          bf: torch.randn([1, 2]).to('bfloat16'),
          u: torch.zeros([5], { dtype: 'uint8' }),
        }),
        { format: 'pt' },
      ),
      mk('scalar-and-empty', () => ({ s: torch.full([], 3.5, { dtype: 'float64' }), e: torch.zeros([0, 4]) })),
      mk('none', () => ({})),
    ];
  },
  read: (dir) => torch.load(join(dir, 'input.safetensors')),
  fields: () => [{ at: 0, width: 8, le: true }],
  text: (_, b) => (b.length >= 8 ? [8, 8 + Buffer.from(b).readUInt32LE(0)] : undefined),
  namesPath: true,
};

const checkpoint: Target = {
  name: 'torch',
  about: 'torch.load of a PyTorch file: zip and legacy formats, pickles (torchfile.ts, zip.ts, pickle.ts)',
  sources: ['torch/io/torchfile', 'torch/io/zip', 'torch/io/pickle'],
  async seeds() {
    const dir = largeGoldens('--checkpoints', 'checkpoints');
    const pytorch = filesOf(dir, /\.pth(\.tar)?$/, 'input.pth');
    // ours: the zip format our writer gives (views of one storage kept), and a training checkpoint's kinds of values
    const ours = written((d) =>
      torch.tidy(() => {
        torch.save(torch.load(join(dir, 'mixed_legacy.pth.tar')), join(d, 'mixed.pth'));
        torch.save(
          {
            epoch: 3,
            state_dict: new Map([['w', torch.randn([2, 2])]]),
            args: { lr: 0.1, name: 'x' },
            list: [1, 2.5, 'a', null, true, -70000, 2 ** 40],
          },
          join(d, 'training.pth'),
        );
      }),
    );
    return [...pytorch, ...Object.entries(ours).map(([name, b]) => ({ name, files: { 'input.pth': b } }))];
  },
  read: (dir) => torch.load(join(dir, 'input.pth')),
  fields: zipFields,
  zip: true,
  opcodes: PICKLE_OPCODES,
  namesPath: true,
};

const IDX_IMAGES = 'train-images-idx3-ubyte';

const idx: Target = {
  name: 'idx',
  about: "openDataset({ type: 'idx' }): MNIST's IDX files, gzipped or not (datasets.ts)",
  sources: ['data/datasets'],
  async seeds() {
    const plain = written((d) => idxDataset(d, 7, 6));
    return [
      { name: 'idx', files: plain },
      { name: 'idx-gz', files: gz(plain) },
      { name: 'idx-no-labels', files: { [IDX_IMAGES]: plain[IDX_IMAGES] } },
    ];
  },
  read: (dir) => openDataset({ type: 'idx', path: dir, split: 'train' }),
  check: datasetCheck(),
  fields: (name, b) =>
    name.endsWith('.gz')
      ? []
      : [
          { at: 2, width: 1, le: false },
          { at: 3, width: 1, le: false },
          ...Array.from({ length: Math.min(b[3] ?? 0, 4) }, (_, i): Field => ({ at: 4 + 4 * i, width: 4, le: false })),
        ],
  gzip: true,
  namesPath: true,
};

/** Bytes from a seeded generator (as test/helpers.ts's idxDataset makes its pixels). */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    b[i] = (s >> 16) & 255;
  }
  return b;
}

/** CIFAR records: a label byte (CIFAR-100: coarse, fine) and 3072 pixel bytes. */
function cifarRecords(n: number, labelBytes: number, seed: number): Buffer {
  const b = noise(n * (labelBytes + 3072), seed);
  for (let r = 0; r < n; r++) for (let l = 0; l < labelBytes; l++) b[r * (labelBytes + 3072) + l] = (r * 7 + l) % 10;
  return b;
}

const cifar: Target = {
  name: 'cifar',
  about: "openDataset({ type: 'cifar10' | 'cifar100' }): the binary batches (datasets.ts)",
  sources: ['data/datasets'],
  async seeds(): Promise<Seed[]> {
    return [
      { name: 'cifar10', files: { 'test_batch.bin': cifarRecords(3, 1, 1) } },
      { name: 'cifar100', files: { 'test.bin': cifarRecords(2, 2, 2) } },
      { name: 'cifar10-gz', files: { 'test_batch.bin': gzipSync(cifarRecords(2, 1, 3)) } },
    ];
  },
  read: (dir) => openDataset({ type: existsSync(join(dir, 'test.bin')) ? 'cifar100' : 'cifar10', path: dir, split: 'test' }),
  check: (d: TensorDataset) => datasetCheck(d.name.startsWith('cifar100') ? 100 : 10)(d),
  gzip: true,
  namesPath: true,
};

const stl10: Target = {
  name: 'stl10',
  about: "openDataset({ type: 'stl10' }): images and labels (datasets.ts)",
  sources: ['data/datasets'],
  async seeds() {
    return [{ name: 'stl10', files: { 'test_X.bin': noise(2 * 3 * 96 * 96, 4), 'test_y.bin': Buffer.from([1, 10]) } }];
  },
  read: (dir) => openDataset({ type: 'stl10', path: dir, split: 'test' }),
  check: datasetCheck(10),
  gzip: true,
  namesPath: true,
};

const jpeg: Target = {
  name: 'jpeg',
  about: "decodeRGB: libjpeg-turbo in the addon (native/jpeg.cc's decodeJpeg), sharp for what it declines (decode.ts)",
  sources: ['data/decode'],
  async seeds() {
    const pil = filesOf(goldenDir, /\.jpg$/, 'input.jpg');
    const rgb = await sharp(readFileSync(join(goldenDir, 'rgb444.jpg')))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const from = () => sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } });
    return [
      ...pil,
      { name: 'progressive', files: { 'input.jpg': await from().jpeg({ progressive: true, quality: 80 }).toBuffer() } },
      { name: 'cmyk', files: { 'input.jpg': await from().toColourspace('cmyk').jpeg().toBuffer() } },
    ];
  },
  read: (dir) => decodeRGB(join(dir, 'input.jpg')),
  check: (im: RGB) =>
    im.width > 0 && im.height > 0 && im.data.length === im.width * im.height * 3
      ? undefined
      : `${im.width} x ${im.height} pixels in ${im.data.length} bytes`,
  fields: jpegFields,
  namesPath: false, // decodeRGB's callers (the loaders) name the file
  // A few bytes may claim up to PIL's pixel limit (decode.ts's MAX_PIXELS), and decode to gray as PIL decodes them: at
  // that limit, a progressive 4:4:4 file costs about 1.6 GB (libjpeg's coefficients, the pixels, their copy) and 5 s;
  // a CMYK one (sharp's colour conversion) 1.1 GB and 8-9 s on a loaded 2-core machine, where PIL takes 4.5 s (the
  // two findings of the 10-minute run of 2026-12-03: bounded, not hung).
  limits: { bytes: 2 * 2 ** 30, ms: 15_000 },
};

const config: Target = {
  name: 'config',
  about: 'loadConfig: YAML parsed, then validated (src/train/config.ts)',
  sources: ['train/config'],
  async seeds() {
    return filesOf(join(root, 'configs'), /\.yaml$/, 'input.yaml');
  },
  read: (dir) => loadConfig(join(dir, 'input.yaml')),
  text: (_, b) => [0, b.length],
  yaml: true,
  namesPath: true,
  unclear: /\[object /, // 'got NaN' is the file's own .nan
};

export const targets: Target[] = [npy, safetensors, checkpoint, idx, cifar, stl10, jpeg, config];

export function targetNamed(name: string, among: Target[] = targets): Target {
  const t = among.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target '${name}': the targets are ${among.map((x) => x.name).join(', ')}`);
  return t;
}
