// Datasets: image folders and file lists (decoded on demand), and the binary formats of MNIST / Fashion-MNIST
// (IDX, gzipped or not), CIFAR-10/100 and STL-10 (held in memory as one uint8 tensor).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fromBytes } from '../torch/creation.js';
import type { Tensor } from '../torch/tensor.js';
import { listImages } from './image.js';

export class DatasetError extends Error {}

/** Images in memory: N x C x H x W uint8, with labels (-1 when unknown). */
export interface TensorDataset {
  kind: 'tensor';
  name: string;
  images: Tensor;
  labels: Int32Array;
  length: number;
  /** The labels' names, where the format has them. */
  classes?: string[];
}

/** Fashion-MNIST's label names, in label order. */
const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Image files, decoded when used. */
export interface FileDataset {
  kind: 'files';
  name: string;
  files: string[];
  labels: Int32Array;
  classes: string[];
  length: number;
}

export type Dataset = TensorDataset | FileDataset;

export type DatasetType = 'folder' | 'filelist' | 'fashion-mnist' | 'mnist' | 'idx' | 'cifar10' | 'cifar100' | 'stl10';
export const DATASET_TYPES: readonly DatasetType[] = [
  'folder',
  'filelist',
  'fashion-mnist',
  'mnist',
  'idx',
  'cifar10',
  'cifar100',
  'stl10',
];

function readMaybeGz(path: string): Buffer {
  for (const p of [path, `${path}.gz`]) {
    if (existsSync(p)) {
      const b = readFileSync(p);
      if (b[0] !== 0x1f || b[1] !== 0x8b) return b;
      try {
        return gunzipSync(b);
      } catch (e) {
        throw new DatasetError(`${p}: a corrupt gzip file (${(e as Error).message})`);
      }
    }
  }
  throw new DatasetError(`${path}(.gz) not found`);
}

/** An IDX file (MNIST's format): magic 0x0000 08 ndims, big-endian dims, uint8 data. */
export function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  const b = readMaybeGz(path);
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || b[2] !== 0x08) throw new DatasetError(`${path}: not an IDX file of uint8 data`);
  const nd = b[3];
  const start = 4 + 4 * nd;
  if (b.length < start)
    throw new DatasetError(`${path}: truncated (a header of ${nd} dimensions needs ${start} bytes, the file has ${b.length})`);
  const dims = Array.from({ length: nd }, (_, i) => b.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, c) => a * BigInt(c), 1n); // exact: the dimensions may multiply past 2^53
  if (BigInt(b.length - start) < n) throw new DatasetError(`${path}: truncated (${b.length - start} of ${n} bytes)`);
  return { dims, data: new Uint8Array(b.buffer, b.byteOffset + start, Number(n)) };
}

const IDX_FILES = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
} as const;

function idxDataset(dir: string, split: string, name: string): TensorDataset {
  const files = IDX_FILES[split as keyof typeof IDX_FILES];
  if (!files) throw new DatasetError(`${name}: split must be train or test, got '${split}'`);
  const img = readIdx(join(dir, files[0]));
  // images of no pixels would let N be anything, with no bytes to show for it
  if (img.dims.length !== 3 || img.dims[1] === 0 || img.dims[2] === 0) {
    throw new DatasetError(`${join(dir, files[0])}: expected N x H x W images, got dimensions [${img.dims.join(', ')}]`);
  }
  const [n, h, w] = img.dims;
  let labels = new Int32Array(n).fill(-1);
  if (existsSync(join(dir, files[1])) || existsSync(join(dir, `${files[1]}.gz`))) {
    const lab = readIdx(join(dir, files[1]));
    if (lab.dims.length !== 1)
      throw new DatasetError(`${join(dir, files[1])}: expected one label per image, got dimensions [${lab.dims.join(', ')}]`);
    if (lab.dims[0] !== n) throw new DatasetError(`${dir}: ${n} images but ${lab.dims[0]} labels`);
    labels = Int32Array.from(lab.data);
  }
  return { kind: 'tensor', name, images: fromBytes(img.data, [n, 1, h, w], 'uint8'), labels, length: n };
}

function cifar(dir: string, split: string, classes: 10 | 100): TensorDataset {
  const files =
    classes === 10
      ? split === 'train'
        ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)
        : ['test_batch.bin']
      : split === 'train'
        ? ['train.bin']
        : ['test.bin'];
  if (split !== 'train' && split !== 'test') throw new DatasetError(`cifar${classes}: split must be train or test`);
  const labelBytes = classes === 10 ? 1 : 2;
  const record = labelBytes + 3072;
  const parts = files.map((f) => {
    const p = existsSync(join(dir, f)) ? join(dir, f) : join(dir, classes === 10 ? 'cifar-10-batches-bin' : 'cifar-100-binary', f);
    const b = readMaybeGz(p);
    if (b.length % record) throw new DatasetError(`${p}: size ${b.length} is not a multiple of ${record}-byte records`);
    // CIFAR-100's records have the coarse label (of 20) first
    const limits = classes === 10 ? [10] : [20, 100];
    for (let off = 0; off < b.length; off += record) {
      const bad = limits.findIndex((c, i) => b[off + i] >= c);
      if (bad >= 0)
        throw new DatasetError(
          `${p}: record ${off / record} has label ${b[off + bad]}, not one of the ${limits[bad]} ${bad || classes === 10 ? '' : 'coarse '}classes`,
        );
    }
    return b;
  });
  const n = parts.reduce((a, b) => a + b.length / record, 0);
  const pixels = new Uint8Array(n * 3072);
  const labels = new Int32Array(n);
  let k = 0;
  for (const b of parts) {
    for (let off = 0; off < b.length; off += record, k++) {
      labels[k] = b[off + labelBytes - 1]; // CIFAR-100: the fine label
      pixels.set(b.subarray(off + labelBytes, off + record), k * 3072);
    }
  }
  return { kind: 'tensor', name: `cifar${classes}-${split}`, images: fromBytes(pixels, [n, 3, 32, 32], 'uint8'), labels, length: n };
}

function stl10(dir: string, split: string): TensorDataset {
  const base = existsSync(join(dir, 'stl10_binary')) ? join(dir, 'stl10_binary') : dir;
  const x = { train: 'train_X.bin', test: 'test_X.bin', unlabeled: 'unlabeled_X.bin' }[split];
  if (!x) throw new DatasetError(`stl10: split must be train, test or unlabeled, got '${split}'`);
  const b = readMaybeGz(join(base, x));
  const size = 3 * 96 * 96;
  if (b.length % size) throw new DatasetError(`${join(base, x)}: size ${b.length} is not a multiple of ${size}`);
  const n = b.length / size;
  let labels = new Int32Array(n).fill(-1);
  if (split !== 'unlabeled') {
    const path = join(base, `${split}_y.bin`);
    const y = readMaybeGz(path);
    if (y.length !== n) throw new DatasetError(`${path}: ${y.length} labels for ${n} images`);
    const bad = y.findIndex((v) => v < 1 || v > 10);
    if (bad >= 0) throw new DatasetError(`${path}: label ${y[bad]} of image ${bad} is not one of the classes 1 to 10`);
    labels = Int32Array.from(y, (v) => v - 1);
  }
  // STL-10 stores each channel column-major: transpose H and W.
  const raw = fromBytes(new Uint8Array(b.buffer, b.byteOffset, b.length), [n, 3, 96, 96], 'uint8');
  const t = raw.transpose(2, 3);
  const images = t.contiguous();
  raw.dispose();
  t.dispose();
  return { kind: 'tensor', name: `stl10-${split}`, images, labels, length: n };
}

/** `known`: another split's classes, whose indices the labels take (a class folder not among them is an error). */
function folder(dir: string, known?: string[]): FileDataset {
  if (!statSync(dir).isDirectory())
    throw new DatasetError(`${dir} is a file, not a folder of images: point data.path (or --data) at a folder`);
  const files = listImages(dir);
  if (!files.length) throw new DatasetError(`${dir}: no images (jpg, png, webp, ...) found`);
  // class subfolders give labels (sorted names, as torchvision's ImageFolder); a flat folder has none
  const classOf = (f: string) => (dirname(f) === resolve(dir) || dirname(f) === dir ? null : f.slice(dir.length + 1).split(/[\\/]/)[0]);
  const own = [...new Set(files.map(classOf).filter((c): c is string => c !== null))].sort();
  const unknown = known?.length ? own.filter((c) => !known.includes(c)) : [];
  if (unknown.length) {
    throw new DatasetError(
      `${dir}: class folder${unknown.length > 1 ? 's' : ''} ${unknown
        .slice(0, 3)
        .map((c) => `'${c}'`)
        .join(', ')}${unknown.length > 3 ? ', ...' : ''} ` +
        `not among the ${known!.length} classes of the train split: the splits must share their classes`,
    );
  }
  const classes = known?.length ? known : own;
  const labels = Int32Array.from(files, (f) => {
    const c = classOf(f);
    return c === null ? -1 : classes.indexOf(c);
  });
  return { kind: 'files', name: dir, files, labels, classes, length: files.length };
}

function fileList(path: string): FileDataset {
  const base = dirname(path);
  const rows = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const files: string[] = [];
  const labels: number[] = [];
  for (const [i, row] of rows.entries()) {
    const m = /^(.*?)(?:\s+(-?\d+))?$/.exec(row)!;
    files.push(isAbsolute(m[1]) ? m[1] : join(base, m[1]));
    labels.push(m[2] === undefined ? -1 : Number(m[2]));
    if (!m[1]) throw new DatasetError(`${path}:${i + 1}: empty file name`);
  }
  return { kind: 'files', name: path, files, labels: Int32Array.from(labels), classes: [], length: files.length };
}

export interface DatasetSpec {
  type: DatasetType;
  path: string;
  /** train / test (IDX, CIFAR), train / test / unlabeled (STL-10); for folders, a subfolder if it exists. */
  split?: string;
  /** Folders: label by these class names (another split's), so that both splits' labels mean the same classes. */
  classes?: string[];
}

export function openDataset(spec: DatasetSpec): Dataset {
  const { type, path } = spec;
  const split = spec.split ?? 'train';
  if (!existsSync(path)) throw new DatasetError(`${type} data not found at ${path}`);
  switch (type) {
    case 'fashion-mnist':
      return { ...idxDataset(path, split, `${type}-${split}`), classes: FASHION_MNIST_CLASSES };
    case 'mnist':
    case 'idx':
      return idxDataset(path, split, `${type}-${split}`);
    case 'cifar10':
      return cifar(path, split, 10);
    case 'cifar100':
      return cifar(path, split, 100);
    case 'stl10':
      return stl10(path, split);
    case 'folder': {
      const isDir = (d: string) => existsSync(d) && statSync(d).isDirectory();
      if (spec.split && isDir(join(path, split))) return folder(join(path, split), spec.classes);
      // a folder of splits without this one is a mistake; a folder without splits is the whole dataset
      const splits = ['train', 'val', 'test'].filter((d) => isDir(join(path, d)));
      if (spec.split && splits.length) {
        throw new DatasetError(
          `${path}: no '${split}' split, it has ${splits.join(', ')}: choose one (--split / --train-split, or data.split, data.eval_split, data.eval_train_split)`,
        );
      }
      return folder(path, spec.classes);
    }
    case 'filelist':
      return fileList(path);
  }
}

/** An evaluation's two splits, the eval split labelled by the train split's classes (folders). */
export function openSplits(type: DatasetType, path: string, trainSplit: string, evalSplit: string): { train: Dataset; val: Dataset } {
  const train = openDataset({ type, path, split: trainSplit });
  try {
    return { train, val: openDataset({ type, path, split: evalSplit, classes: train.kind === 'files' ? train.classes : undefined }) };
  } catch (e) {
    if (train.kind === 'tensor') train.images.dispose();
    throw e;
  }
}
