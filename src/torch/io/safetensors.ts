// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the bytes. Every range is checked against the file before anything is read.
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { native } from '../native.js';
import { type Tensor, wrap } from '../tensor.js';
import { itemSize, type DType } from '../dtype.js';

export class SafetensorsError extends Error {}

const CODES: Record<string, DType> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const CODE_OF = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k])) as Record<DType, string>;

/** Loads every tensor of a .safetensors file; `metadata` is the header's __metadata__. */
export function loadSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  const out = new Map<string, Tensor>();
  try {
    const size = fstatSync(fd).size;
    const fail = (msg: string): never => {
      throw new SafetensorsError(`${path}: not a valid safetensors file: ${msg}`);
    };
    if (size < 8) fail('too short');
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > 100_000_000 || 8 + headerLen > size) fail(`header length ${headerLen} exceeds the file (${size} bytes)`);
    const hb = Buffer.alloc(headerLen);
    readSync(fd, hb, 0, headerLen, 8);
    let header: any;
    try {
      header = JSON.parse(hb.toString('utf8'));
    } catch {
      return fail('the header is not JSON');
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not an object');
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    const metadata: Record<string, string> = header.__metadata__ ?? {};
    if (typeof metadata !== 'object' || Array.isArray(metadata) || Object.values(metadata).some((v) => typeof v !== 'string')) {
      fail('__metadata__ is not an object of strings');
    }
    // safe integers only: past 2^53 a number is not the one written (and no file is that long)
    const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
    for (const [name, info] of Object.entries<any>(header)) {
      if (name === '__metadata__') continue;
      if (info === null || typeof info !== 'object' || Array.isArray(info))
        fail(`tensor ${name} is not an object of dtype, shape and data_offsets`);
      const dtype = CODES[info.dtype];
      if (!dtype) fail(`tensor ${name} has ${'dtype' in info ? `unsupported dtype ${JSON.stringify(info.dtype)}` : 'no dtype'}`);
      const shape = info.shape;
      const offsets = info.data_offsets;
      if (!Array.isArray(shape) || !shape.every(count)) fail(`tensor ${name} has a bad shape`);
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(count)) fail(`tensor ${name} has bad data_offsets`);
      const [begin, end] = offsets as [number, number];
      const numel = (shape as number[]).reduce((a, b) => a * b, 1);
      if (end < begin || end > dataLen) fail(`tensor ${name} lies outside the file (bytes ${begin}-${end} of ${dataLen})`);
      if (end - begin !== numel * itemSize[dtype])
        fail(`tensor ${name}: shape [${shape}] of ${dtype} needs ${numel * itemSize[dtype]} bytes, its range has ${end - begin}`);
      const flat = wrap(native.fromFile(path, dataStart + begin, end - begin, dtype));
      try {
        out.set(name, flat.view(shape as number[]));
      } finally {
        flat.dispose();
      }
    }
    return { tensors: out, metadata };
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    closeSync(fd);
  }
}

/** Saves named tensors (each as its own contiguous bytes), atomically. */
export function saveSafetensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  path: string,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.numel() * itemSize[t.dtype];
    header[name] = { dtype: CODE_OF[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // data 8-byte aligned, as the reference writer does
  const jb = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jb.length));
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'w');
  try {
    let pos = 0;
    const put = (b: Uint8Array) => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
      pos += b.length;
    };
    put(len);
    put(jb);
    for (const [, t] of entries) put(t.toBytes());
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}
