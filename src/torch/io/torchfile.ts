// PyTorch's own files (.pth, .pth.tar, .pt): the zip format (torch >= 1.6) and the legacy format (magic
// number, protocol, sys info, the pickled object, the storage keys, then each storage's bytes) that the 2020
// SwAV release uses. Reading never runs code from the file: see pickle.ts. Writing uses the zip format that
// torch.load(path, weights_only=True) reads.
import { closeSync, fstatSync, openSync, readSync, rmSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { native } from '../native.js';
import { Tensor, call, wrap } from '../tensor.js';
import { itemSize, type DType } from '../dtype.js';
import { PyGlobal, PyTuple, Pickler, UnpicklingError, unpickle, type UnpickleOptions } from './pickle.js';
import { ZipError, ZipWriter, isZip, readEntry, readZipDirectory } from './zip.js';

export class CheckpointError extends Error {}

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
const STORAGE_OF: Record<DType, string> = Object.fromEntries(Object.entries(STORAGE_DTYPES).map(([k, v]) => [v, k])) as Record<
  DType,
  string
>;

/** A storage named by a persistent id (`numel` elements from `elementOffset` of storage `key`): its bytes are
 * read once the pickle is understood. */
class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly elementOffset = 0,
  ) {}
}

/** A tensor described by the pickle: a view (offset, size, stride) into a storage. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

/** numpy.dtype('f8') and the like, as numpy scalars in checkpoints use them. */
class NumpyDtype {
  constructor(
    readonly name: string,
    public littleEndian = true,
  ) {}
}

/** A value from the file in a message: numbers and names as they are, containers by their kind and first items. */
function shown(v: unknown, depth = 0): string {
  if (v instanceof PyGlobal) return v.path;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number') return Number.isNaN(v) ? 'nan' : Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : '-inf';
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'None';
  if (Array.isArray(v)) {
    const kind = v instanceof PyTuple ? 'tuple' : 'list';
    return depth
      ? `a ${kind} of ${v.length}`
      : `${kind} (${v
          .slice(0, 6)
          .map((x) => shown(x, 1))
          .join(', ')}${v.length > 6 ? ', ...' : ''})`;
  }
  if (v instanceof Map) return 'a dict';
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  return `a ${(v as object).constructor?.name ?? 'value'}`;
}

const int = (v: unknown, what: string): number => {
  // safe integers only: past 2^53 a number is not the one written (and no storage is that large)
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new CheckpointError(`corrupt checkpoint: ${what} is ${shown(v)}`);
  return v as number;
};
const ints = (v: unknown, what: string): number[] => {
  if (!Array.isArray(v)) throw new CheckpointError(`corrupt checkpoint: ${what} is not a tuple`);
  return v.map((x, i) => int(x, `${what}[${i}]`));
};

function storageRef(pid: unknown): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw new CheckpointError(`corrupt checkpoint: unexpected persistent id ${shown(pid)}`);
  }
  const [, type, key, , numel, view] = pid;
  const dtype = type instanceof PyGlobal && type.module === 'torch' ? STORAGE_DTYPES[type.name] : undefined;
  if (!dtype) throw new CheckpointError(`unsupported storage type ${shown(type)}`);
  if (typeof key !== 'string') throw new CheckpointError('corrupt checkpoint: storage key is not a string');
  if (Array.isArray(view) && view.length === 3) {
    // a legacy storage view: (view key, offset, size) into the root storage `key`
    return new StorageRef(key, dtype, int(view[2], 'view size'), int(view[1], 'view offset'));
  }
  return new StorageRef(key, dtype, int(numel, 'storage size'));
}

function numpyScalar(dtype: unknown, data: unknown): number | boolean {
  if (!(dtype instanceof NumpyDtype) || !(data instanceof Uint8Array)) throw new CheckpointError('corrupt numpy scalar');
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = dtype.littleEndian;
  const need = (n: number) => {
    if (data.length < n) throw new CheckpointError('corrupt numpy scalar');
  };
  switch (dtype.name) {
    case 'f8':
      need(8);
      return v.getFloat64(0, le);
    case 'f4':
      need(4);
      return v.getFloat32(0, le);
    case 'i8':
      need(8);
      return Number(v.getBigInt64(0, le));
    case 'i4':
      need(4);
      return v.getInt32(0, le);
    case 'u8':
      need(8);
      return Number(v.getBigUint64(0, le));
    case 'b1':
      need(1);
      return data[0] !== 0;
    default:
      throw new CheckpointError(`unsupported numpy scalar type ${dtype.name}`);
  }
}

/** The globals a checkpoint may name: data constructors, each implemented here. Anything else is refused. */
const unpickleOptions = (persistentLoad: (pid: unknown) => unknown): UnpickleOptions => ({
  persistentLoad,
  call(fn, args) {
    switch (fn.path) {
      case 'collections.OrderedDict': {
        const m = new Map();
        if (Array.isArray(args[0])) for (const kv of args[0]) if (Array.isArray(kv)) m.set(kv[0], kv[1]);
        return m;
      }
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2': {
        const [storage, offset, size, stride] = args;
        if (!(storage instanceof StorageRef)) throw new CheckpointError('corrupt checkpoint: a tensor without storage');
        return new TensorRef(storage, int(offset, 'storage offset'), ints(size, 'size'), ints(stride, 'stride'));
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return args[0];
      case 'torch.device':
        return args.map(String).join(':');
      case 'torch.Size':
        return Array.isArray(args[0]) ? [...args[0]] : [];
      case 'builtins.set':
      case '__builtin__.set':
        return new Set(Array.isArray(args[0]) ? args[0] : []);
      case 'builtins.frozenset':
      case '__builtin__.frozenset':
        return new Set(Array.isArray(args[0]) ? args[0] : []);
      case '_codecs.encode':
        return typeof args[0] === 'string' ? Uint8Array.from(args[0], (c) => c.charCodeAt(0) & 0xff) : undefined;
      case 'numpy.dtype':
        return typeof args[0] === 'string' ? new NumpyDtype(args[0]) : undefined;
      case 'numpy.core.multiarray.scalar':
        return numpyScalar(args[0], args[1]);
      default:
        return undefined;
    }
  },
  construct(cls) {
    if (cls.path === 'argparse.Namespace') return {};
    return undefined;
  },
  build(obj, state) {
    if (obj instanceof Map) return true; // OrderedDict's _metadata
    if (obj instanceof TensorRef) return true; // tensor attributes (e.g. hooks state)
    if (obj instanceof NumpyDtype) {
      if (Array.isArray(state) && typeof state[1] === 'string') obj.littleEndian = state[1] !== '>';
      return true;
    }
    if (obj !== null && typeof obj === 'object' && Object.getPrototypeOf(obj) === Object.prototype && state instanceof Map) {
      for (const [k, v] of state) if (typeof k === 'string' && k !== '__proto__') (obj as Record<string, unknown>)[k] = v;
      return true;
    }
    return false;
  },
});

/** Reads storages (key -> 1-d tensor) and turns TensorRefs into tensors, dicts into objects. */
function materialize(value: unknown, readStorage: (ref: StorageRef) => Tensor): unknown {
  const bases = new Map<string, Tensor>();
  const seen = new Map<unknown, unknown>();
  const convert = (v: unknown, depth: number): unknown => {
    if (depth > 200) throw new CheckpointError('checkpoint nested too deeply');
    if (v === null || typeof v !== 'object') return v;
    if (seen.has(v)) return seen.get(v);
    if (v instanceof TensorRef) {
      const s = v.storage;
      let base = bases.get(s.key);
      if (!base) bases.set(s.key, (base = readStorage(s)));
      if (base.dtype !== s.dtype) throw new CheckpointError(`storage ${s.key} is read as two different types`);
      const numel = v.size.reduce((a, b) => a * b, 1);
      const offset = s.elementOffset + v.offset;
      const last = v.size.reduce((m, n, i) => m + (n - 1) * v.stride[i], offset);
      if (v.size.length !== v.stride.length) throw new CheckpointError('corrupt checkpoint: size and stride differ in length');
      if (numel > 0 && (last >= s.elementOffset + s.numel || s.elementOffset + s.numel > base.numel())) {
        throw new CheckpointError(
          `corrupt checkpoint: a tensor of size [${v.size}] at offset ${offset} needs ${last + 1} ` +
            `elements of storage ${s.key}, which holds ${base.numel()}`,
        );
      }
      const t = wrap(call('as_strided', base.h, v.size, v.stride, offset));
      seen.set(v, t);
      return t;
    }
    if (v instanceof Map) {
      const plain = [...v.keys()].every((k) => typeof k === 'string' || typeof k === 'number');
      const out: Record<string, unknown> | Map<unknown, unknown> = plain ? {} : new Map();
      seen.set(v, out);
      for (const [k, x] of v) {
        if (out instanceof Map) out.set(k, convert(x, depth + 1));
        else Object.defineProperty(out, String(k), { value: convert(x, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      seen.set(v, out);
      for (const x of v) out.push(convert(x, depth + 1));
      return out;
    }
    if (v instanceof Set) return new Set([...v].map((x) => convert(x, depth + 1)));
    if (v instanceof NumpyDtype) return v.name;
    if (Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, x] of Object.entries(v)) (v as Record<string, unknown>)[k] = convert(x, depth + 1);
      return v;
    }
    return v;
  };
  try {
    return convert(value, 0);
  } catch (e) {
    for (const t of seen.values()) if (t instanceof Tensor) t.dispose();
    throw e;
  } finally {
    for (const b of bases.values()) b.dispose(); // the views keep the storages alive
  }
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function loadZip(path: string, fd: number): unknown {
  const entries = readZipDirectory(fd);
  const pkl = [...entries.keys()].find((n) => n.endsWith('data.pkl') && n.split('/').length === 2);
  if (!pkl) throw new CheckpointError('a zip file without data.pkl: not a PyTorch checkpoint');
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && readEntry(fd, order).toString().trim() !== 'little') throw new CheckpointError('big-endian checkpoints are not supported');
  const { value } = unpickle(readEntry(fd, entries.get(pkl)!), 0, unpickleOptions(storageRef));
  return materialize(value, (ref) => {
    const e = entries.get(`${prefix}data/${ref.key}`);
    if (!e) throw new CheckpointError(`corrupt checkpoint: storage ${ref.key} is missing`);
    if (e.method !== 0) throw new CheckpointError(`storage ${ref.key} is compressed; torch files store storages uncompressed`);
    const bytes = (ref.elementOffset + ref.numel) * itemSize[ref.dtype];
    if (e.size < bytes) {
      throw new CheckpointError(`corrupt checkpoint: storage ${ref.key} has ${e.size} bytes, its tensors need ${bytes}`);
    }
    return wrap(native.fromFile(path, e.offset, e.size - (e.size % itemSize[ref.dtype]), ref.dtype));
  });
}

function loadLegacy(path: string, fd: number, size: number): unknown {
  // The pickles are small and come first: read a growing prefix of the file until they parse.
  for (let chunk = Math.min(size, 1 << 20); ; chunk = Math.min(size, chunk * 4)) {
    const head = Buffer.alloc(chunk);
    readSync(fd, head, 0, chunk, 0);
    const dtypes = new Map<string, DType>();
    const noPid: UnpickleOptions = unpickleOptions(() => {
      throw new CheckpointError('corrupt checkpoint header');
    });
    try {
      let r = unpickle(head, 0, noPid);
      if (r.value !== LEGACY_MAGIC) throw new CheckpointError('not a PyTorch checkpoint (bad magic number)');
      r = unpickle(head, r.end, noPid);
      if (r.value !== 1001) throw new CheckpointError(`unsupported legacy protocol ${shown(r.value)}`);
      r = unpickle(head, r.end, noPid);
      const sys = r.value instanceof Map ? r.value : new Map();
      if (sys.get('little_endian') === false) throw new CheckpointError('big-endian checkpoints are not supported');
      const obj = unpickle(
        head,
        r.end,
        unpickleOptions((pid) => {
          const ref = storageRef(pid);
          dtypes.set(ref.key, ref.dtype);
          return ref;
        }),
      );
      const keys = unpickle(head, obj.end, noPid);
      if (!Array.isArray(keys.value) || keys.value.some((k) => typeof k !== 'string'))
        throw new CheckpointError('corrupt checkpoint: bad storage key list');
      // Then each storage in key order: its element count (int64), then its bytes.
      const located = new Map<string, { offset: number; numel: number }>();
      let pos = keys.end;
      for (const key of keys.value as string[]) {
        const dtype = dtypes.get(key);
        if (!dtype) throw new CheckpointError(`corrupt checkpoint: storage ${key} is listed but never used`);
        if (pos + 8 > size) throw new CheckpointError(`truncated checkpoint: storage ${key} starts past the end of the file`);
        const n = Buffer.alloc(8);
        readSync(fd, n, 0, 8, pos);
        const numel = Number(n.readBigInt64LE(0));
        const bytes = numel * itemSize[dtype];
        if (numel < 0 || pos + 8 + bytes > size) {
          throw new CheckpointError(
            `truncated checkpoint: storage ${key} needs ${bytes} bytes at offset ${pos + 8}, the file has ${size} bytes`,
          );
        }
        located.set(key, { offset: pos + 8, numel });
        pos += 8 + bytes;
      }
      return materialize(obj.value, (ref) => {
        const at = located.get(ref.key);
        if (!at) throw new CheckpointError(`corrupt checkpoint: storage ${ref.key} is missing`);
        return wrap(native.fromFile(path, at.offset, at.numel * itemSize[ref.dtype], ref.dtype));
      });
    } catch (e) {
      if (e instanceof UnpicklingError && e.message.startsWith('truncated') && chunk < size) continue;
      throw e;
    }
  }
}

/** A pickle on its own (no storages): plain data only, read under the same allowlist. */
function loadPlainPickle(fd: number, size: number): unknown {
  const buf = Buffer.alloc(size);
  readSync(fd, buf, 0, size, 0);
  const { value } = unpickle(
    buf,
    0,
    unpickleOptions(() => {
      throw new CheckpointError('a plain pickle with tensor storages');
    }),
  );
  return materialize(value, () => {
    throw new CheckpointError('a plain pickle with tensor storages');
  });
}

/**
 * Loads a PyTorch checkpoint (zip or legacy format) as plain data: tensors (views of shared storages kept),
 * dicts as objects (or Maps for keys that are not strings), lists, numbers, strings.
 */
export function loadTorchFile(path: string): unknown {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 512));
    readSync(fd, head, 0, head.length, 0);
    if (isZip(head)) return loadZip(path, fd);
    if (head[0] === 0x80 && head[2] === 0x8a) return loadLegacy(path, fd, size);
    if (head[0] === 0x80) return loadPlainPickle(fd, size);
    if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
      throw new CheckpointError('this is the tar format of PyTorch < 0.4: load it in an older PyTorch and save it again');
    }
    throw new CheckpointError('not a PyTorch checkpoint: neither the zip nor the legacy format');
  } catch (e) {
    if (e instanceof CheckpointError || e instanceof UnpicklingError || e instanceof ZipError) {
      throw new CheckpointError(`${path}: ${e.message}`);
    }
    throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * Saves `obj` (tensors, nested in objects, Maps (as OrderedDict), arrays, numbers, strings) in the zip format;
 * tensors sharing a storage share it in the file. Written to a temporary file, then renamed.
 */
export function saveTorchFile(obj: unknown, path: string): void {
  const storages = new Map<string, { key: string; tensor: Tensor; dtype: DType }>();
  const pickler = new Pickler({
    custom(v, w) {
      if (!(v instanceof Tensor)) return false;
      const [id, nbytes] = native.storage(v.h);
      const dtype = v.dtype;
      let s = storages.get(`${id}:${dtype}`);
      if (!s) storages.set(`${id}:${dtype}`, (s = { key: String(storages.size), tensor: v, dtype }));
      w.global('torch._utils', '_rebuild_tensor_v2');
      w.mark();
      // persistent id: ('storage', torch.<Type>Storage, key, location, numel)
      w.mark();
      w.string('storage');
      w.global('torch', STORAGE_OF[dtype]);
      w.string(s.key);
      w.string(v.device.startsWith('cuda') ? v.device : 'cpu');
      w.int(nbytes / itemSize[dtype]);
      w.op(0x74); // TUPLE
      w.op(0x51); // BINPERSID
      w.int(v.storageOffset());
      w.tuple(v.shape);
      w.tuple(v.stride());
      w.value(false);
      w.dict([], true);
      w.op(0x74); // TUPLE
      w.op(0x52); // REDUCE
      return true;
    },
  });
  const data = pickler.dump(obj);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const zip = new ZipWriter(tmp);
  try {
    const folder = 'archive';
    zip.add(`${folder}/data.pkl`, data);
    zip.add(`${folder}/byteorder`, Buffer.from('little'));
    for (const s of storages.values()) zip.add(`${folder}/data/${s.key}`, new Uint8Array(native.storageBytes(s.tensor.h)));
    zip.add(`${folder}/version`, Buffer.from('3\n'));
    zip.close();
    renameSync(tmp, path);
  } catch (e) {
    zip.abort();
    rmSync(tmp, { force: true });
    throw e;
  }
}
