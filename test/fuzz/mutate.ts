// Mutations of seed files, as fast-check arbitraries: a plan (which seed, which operations) is generated, shrunk
// by fast-check when it finds something, and applied deterministically to the seed's bytes.
import fc from 'fast-check';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ZipWriter, readEntry, readZipDirectory } from '../../src/torch/io/zip.js';

/** A seed: named files (one for most readers; a dataset's images and labels for some). */
export interface Seed {
  name: string;
  files: Record<string, Uint8Array>;
}

/** A numeric field of a format's header, found in the current bytes (structure-aware mutations). */
export interface Field {
  at: number;
  width: 1 | 2 | 4 | 8;
  le: boolean;
}

/** What a target tells the mutator about its format. */
export interface Format {
  /** Length and count fields of the file's headers. */
  fields?(file: string, b: Uint8Array): Field[];
  /** The byte range that is text (npy/safetensors headers, YAML): its numbers get replaced. */
  text?(file: string, b: Uint8Array): [number, number] | undefined;
  /** YAML: line-level edits and hostile values. */
  yaml?: boolean;
  /** Zip containers: an entry's bytes mutated and the archive rebuilt (reaches the pickle inside). */
  zip?: boolean;
  /** Bytes worth writing at random places (pickle opcodes). */
  opcodes?: readonly number[];
  /** Files that may be gzipped (the dataset readers gunzip). */
  gzip?: boolean;
}

// Edges of signed and unsigned widths, of doubles' integers, and image-size limits (16383: libvips', JPEG's practical;
// as pairs of 16-bit dimensions too, which one 32-bit write sets together).
const BOUNDARIES: bigint[] = [
  0n,
  1n,
  2n,
  0x7fn,
  0x80n,
  0xffn,
  0x100n,
  0x3fffn,
  0x4000n,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x10000n,
  0x30003000n,
  0x3fff3fffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  1n << 53n,
  (1n << 53n) + 1n,
  1n << 60n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
];
const NUMBERS = [
  '0',
  '-1',
  '1',
  '-0',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '1152921504606846976',
  '18446744073709551616',
  '1e309',
  '1.5',
  '99999999999999999999999999',
  '',
];
const YAML_VALUES = [
  '~',
  '[]',
  '{}',
  '[[]]',
  '-1',
  '.nan',
  '-.inf',
  '1e400',
  '"x"',
  "''",
  'true',
  '!!binary AAAA',
  '&a [1, *a]',
  '*nope',
  '{a: {b: {c: [1]}}}',
  '[1, 2, 3, 4, 5, 6, 7, 8]',
  '0x7fffffffffffffff',
  '!!set {a}',
  '__proto__',
  '9007199254740993',
  '"\\0"',
  '- a',
  '|\n  x',
];

const pos = fc.nat();
const byteOps = [
  { weight: 4, arbitrary: fc.record({ k: fc.constant('flip' as const), at: pos, bit: fc.nat(7) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('word' as const),
      at: pos,
      width: fc.constantFrom(1, 2, 4, 8),
      le: fc.boolean(),
      value: fc.constantFrom(...BOUNDARIES),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('arith' as const),
      at: pos,
      width: fc.constantFrom(1, 2, 4, 8),
      le: fc.boolean(),
      delta: fc.integer({ min: -35, max: 35 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cut' as const), at: pos }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('insert' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('remove' as const), at: pos, len: fc.integer({ min: 1, max: 512 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('dup' as const), from: pos, len: fc.integer({ min: 1, max: 1024 }), to: pos }) },
];
const spliceOp = fc.record({ k: fc.constant('splice' as const), other: fc.nat(), at: pos, from: pos });
type Of<A> = A extends fc.Arbitrary<infer T> ? T : never;
type ByteOp = Of<(typeof byteOps)[number]['arbitrary']> | Of<typeof spliceOp>;

const fieldOp = fc.record({
  k: fc.constant('field' as const),
  index: fc.nat(),
  value: fc.oneof(fc.constantFrom(...BOUNDARIES), fc.integer({ min: -8, max: 8 })),
});
const numberOp = fc.record({ k: fc.constant('number' as const), index: fc.nat(), text: fc.constantFrom(...NUMBERS) });
const lineOp = fc.record({
  k: fc.constant('line' as const),
  index: fc.nat(),
  action: fc.constantFrom('delete', 'dup', 'value'),
  value: fc.constantFrom(...YAML_VALUES),
});
const gzipOp = fc.record({ k: fc.constant('gzip' as const) });
const opcodeOp = (codes: readonly number[]) => fc.record({ k: fc.constant('opcode' as const), at: pos, code: fc.constantFrom(...codes) });
const entryOp = fc.record({
  k: fc.constant('entry' as const),
  index: fc.nat(),
  ops: fc.array(fc.oneof(...byteOps), { minLength: 1, maxLength: 4 }),
});

type Op =
  | ByteOp
  | Of<typeof fieldOp>
  | Of<typeof numberOp>
  | Of<typeof lineOp>
  | Of<typeof gzipOp>
  | { k: 'opcode'; at: number; code: number }
  | { k: 'entry'; index: number; ops: ByteOp[] };

/** One operation on one of the seed's files (`file` taken modulo their number). */
export interface Plan {
  seed: number;
  ops: { file: number; op: Op }[];
}

/** The plans for a target: a seed and one to six operations, those its format allows among them. */
export function planArbitrary(format: Format): fc.Arbitrary<Plan> {
  const ops: fc.WeightedArbitrary<Op>[] = [...byteOps, { weight: 1, arbitrary: spliceOp }];
  if (format.fields) ops.push({ weight: 6, arbitrary: fieldOp });
  if (format.text) ops.push({ weight: 4, arbitrary: numberOp });
  if (format.yaml) ops.push({ weight: 6, arbitrary: lineOp });
  if (format.gzip) ops.push({ weight: 1, arbitrary: gzipOp });
  if (format.opcodes) ops.push({ weight: 3, arbitrary: opcodeOp(format.opcodes) });
  if (format.zip) ops.push({ weight: 6, arbitrary: entryOp });
  const op = fc.record({ file: fc.nat(), op: fc.oneof(...ops) });
  return fc.record({ seed: fc.nat(), ops: fc.array(op, { minLength: 1, maxLength: 6 }) });
}

const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);

function writeWord(b: Uint8Array, at: number, width: number, le: boolean, value: bigint): Uint8Array {
  const out = Uint8Array.from(b);
  for (let i = 0; i < width && at + i < out.length; i++) {
    out[le ? at + i : at + width - 1 - i] = Number((value >> BigInt(8 * i)) & 0xffn);
  }
  return out;
}

function readWord(b: Uint8Array, at: number, width: number, le: boolean): bigint {
  let v = 0n;
  for (let i = 0; i < width; i++) v |= BigInt(b[le ? at + i : at + width - 1 - i] ?? 0) << BigInt(8 * i);
  return v;
}

const mask = (v: bigint, width: number) => BigInt.asUintN(8 * width, v);

function byteOp(b: Uint8Array, op: ByteOp, others: Uint8Array[]): Uint8Array {
  const n = b.length;
  const at = (p: number, extra = 0) => (n + extra === 0 ? 0 : p % (n + extra));
  switch (op.k) {
    case 'flip': {
      if (!n) return b;
      const out = Uint8Array.from(b);
      out[at(op.at)] ^= 1 << op.bit;
      return out;
    }
    case 'word':
      return n ? writeWord(b, at(op.at), op.width, op.le, mask(op.value, op.width)) : b;
    case 'arith': {
      if (!n) return b;
      const p = at(op.at);
      return writeWord(b, p, op.width, op.le, mask(readWord(b, p, op.width, op.le) + BigInt(op.delta), op.width));
    }
    case 'cut':
      return b.subarray(0, at(op.at, 1));
    case 'insert': {
      const p = at(op.at, 1);
      return concat(b.subarray(0, p), op.bytes, b.subarray(p));
    }
    case 'remove': {
      const p = at(op.at);
      return concat(b.subarray(0, p), b.subarray(p + op.len));
    }
    case 'dup': {
      const f = at(op.from);
      const t = at(op.to, 1);
      return concat(b.subarray(0, t), b.subarray(f, f + op.len), b.subarray(t));
    }
    case 'splice': {
      const o = others.length ? others[op.other % others.length] : b;
      return concat(b.subarray(0, at(op.at, 1)), o.subarray(o.length ? op.from % o.length : 0));
    }
  }
}

/** Digit runs (with a sign or a fraction) in the text range. */
function numbers(b: Uint8Array, [start, end]: [number, number]): [number, number][] {
  const text = Buffer.from(b.subarray(start, end)).toString('latin1');
  return [...text.matchAll(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/g)].map((m) => [start + m.index, start + m.index + m[0].length]);
}

function yamlLine(b: Uint8Array, index: number, action: string, value: string): Uint8Array {
  const lines = Buffer.from(b).toString('utf8').split('\n');
  const i = index % lines.length;
  if (action === 'delete') lines.splice(i, 1);
  else if (action === 'dup') lines.splice(i, 0, lines[i]);
  else lines[i] = /:/.test(lines[i]) ? lines[i].replace(/:.*$/, `: ${value}`) : `${lines[i]}${value}`;
  return Buffer.from(lines.join('\n'), 'utf8');
}

/** An entry of a zip file mutated, the archive written again (when the current bytes still read as a zip). */
function zipEntry(b: Uint8Array, index: number, ops: ByteOp[], scratch: string): Uint8Array {
  const path = join(scratch, '.zip-mutation');
  writeFileSync(path, b);
  let entries: { name: string; data: Uint8Array }[];
  const fd = openSync(path, 'r');
  try {
    entries = [...readZipDirectory(fd).values()].map((e) => ({ name: e.name, data: readEntry(fd, e) }));
  } catch {
    return b;
  } finally {
    closeSync(fd);
  }
  if (!entries.length) return b;
  // the pickle is where the structure is: data.pkl is picked twice as often as any other entry
  const pkl = entries.findIndex((e) => e.name.endsWith('data.pkl'));
  const i = index % (entries.length + 1) === entries.length && pkl >= 0 ? pkl : index % entries.length;
  entries[i].data = ops.reduce((d, op) => byteOp(d, op, []), entries[i].data);
  const zip = new ZipWriter(path);
  for (const e of entries) zip.add(e.name, e.data);
  zip.close();
  return readFileSync(path);
}

function apply(format: Format, name: string, b: Uint8Array, op: Op, others: Uint8Array[], scratch: string): Uint8Array {
  switch (op.k) {
    case 'field': {
      const fields = format.fields!(name, b).filter((f) => f.at + f.width <= b.length);
      if (!fields.length) return b;
      const f = fields[op.index % fields.length];
      const v = typeof op.value === 'bigint' ? op.value : readWord(b, f.at, f.width, f.le) + BigInt(op.value);
      return writeWord(b, f.at, f.width, f.le, mask(v, f.width));
    }
    case 'number': {
      const range = format.text!(name, b);
      const found = range ? numbers(b, range) : [];
      if (!found.length) return b;
      const [s, e] = found[op.index % found.length];
      return concat(b.subarray(0, s), Buffer.from(op.text, 'latin1'), b.subarray(e));
    }
    case 'line':
      return yamlLine(b, op.index, op.action, op.value);
    case 'gzip':
      return gzipSync(b);
    case 'opcode': {
      if (!b.length) return b;
      const out = Uint8Array.from(b);
      out[op.at % b.length] = op.code;
      return out;
    }
    case 'entry':
      return zipEntry(b, op.index, op.ops, scratch);
    default:
      return byteOp(b, op, others);
  }
}

/** The files a plan makes of its seed; `scratch` is a directory for the zip rebuilds. */
export function applyPlan(format: Format, seeds: Seed[], plan: Plan, scratch: string): Record<string, Uint8Array> {
  const seed = seeds[plan.seed % seeds.length];
  const files = { ...seed.files };
  const names = Object.keys(files);
  for (const { file, op } of plan.ops) {
    const name = names[file % names.length];
    // splices take the same file of another seed, else any file
    const others = seeds.map((s) => s.files[name] ?? Object.values(s.files)[0]);
    files[name] = apply(format, name, files[name], op, others, scratch);
  }
  return files;
}
