// NumPy .npy files (format versions 1-3): what numpy.save writes and numpy.load reads.
import { fromBytes } from '../creation.js';
import type { Tensor } from '../tensor.js';
import type { DType } from '../dtype.js';
import { itemSize } from '../dtype.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR: Record<string, DType> = {
  f4: 'float32',
  f8: 'float64',
  f2: 'float16',
  i8: 'int64',
  i4: 'int32',
  i2: 'int16',
  i1: 'int8',
  u1: 'uint8',
  b1: 'bool',
};
const DESCR_OF: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(DESCR).map(([k, v]) => [v, k]));

export class NpyError extends Error {}

function fail(what: string, file?: string): never {
  throw new NpyError(`${file ? `${file}: ` : ''}not a valid .npy file: ${what}`);
}

/** Parses .npy bytes into a CPU tensor (a copy). */
export function parseNpy(bytes: Uint8Array, file?: string): Tensor {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) fail('bad magic number', file);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('truncated header', file);
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    fail(`unsupported version ${major}`, file);
  }
  if (offset + headerLen > bytes.length) fail('truncated header', file);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(offset, offset + headerLen));
  const descr = /'descr'\s*:\s*'([<>|=])([a-z]\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) fail(`unreadable header ${JSON.stringify(header.trim())}`, file);
  const dtype = DESCR[descr[2]];
  if (!dtype) fail(`unsupported dtype '${descr[1]}${descr[2]}'`, file);
  const shape = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  // safe integers only: past 2^53 a dimension is not the number written (and no tensor has one that long)
  if (shape.some((n) => !Number.isSafeInteger(n) || n < 0)) fail(`bad shape (${shapeM[1]})`, file);
  const numel = shape.reduce((a, b) => a * b, 1);
  const size = itemSize[dtype];
  const start = offset + headerLen;
  if (start + numel * size > bytes.length) {
    fail(`data truncated: shape (${shape.join(', ')}) needs ${numel * size} bytes, the file has ${bytes.length - start}`, file);
  }
  const data = bytes.slice(start, start + numel * size); // aligned copy
  if (descr[1] === '>' && size > 1) {
    for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse();
  }
  const isFortran = fortran[1] === 'True';
  const t = fromBytes(data, isFortran ? [...shape].reverse() : shape, dtype);
  if (!isFortran || shape.length < 2) return t;
  const perm = shape.map((_, i) => shape.length - 1 - i);
  try {
    const p = t.permute(perm);
    try {
      return p.contiguous();
    } finally {
      p.dispose();
    }
  } finally {
    t.dispose();
  }
}

/** .npy bytes (version 1.0, C order) of a tensor; bfloat16 has no NumPy type and is refused. */
export function formatNpy(t: Tensor): Uint8Array {
  const code = DESCR_OF[t.dtype];
  if (!code) throw new NpyError(`.npy has no ${t.dtype} type: convert first, e.g. t.float()`);
  const endian = code === 'u1' || code === 'i1' || code === 'b1' ? '|' : '<';
  const shape = t.shape;
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${endian}${code}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += `${' '.repeat((64 - (total % 64)) % 64)}\n`;
  const body = t.toBytes();
  const out = new Uint8Array(10 + header.length + body.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}
