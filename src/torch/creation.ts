// Creating tensors: torch.tensor, zeros, ones, full, randn, rand, randint, arange, empty, ...
// Numbers default to float32 (JS has no separate int literal); pass dtype for integers.
import { native } from './native.js';
import { type Tensor, call, wrap } from './tensor.js';
import { type DType, type Device, type MemoryFormat, type TypedArray, dtypeOfArray } from './dtype.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type Shape = number | number[];
const shapeOf = (s: Shape) => (typeof s === 'number' ? [s] : s);

function finish(t: Tensor, o: TensorOptions): Tensor {
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

function onDevice(t: Tensor, o: TensorOptions): Tensor {
  if (!o.device || o.device === 'cpu') return t;
  try {
    return t.to(o.device);
  } finally {
    t.dispose();
  }
}

export type NestedArray = number | boolean | NestedArray[];

/** torch.tensor(data): nested arrays of numbers or booleans, or a TypedArray (its dtype unless given). */
export function tensor(data: NestedArray | TypedArray, opts: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) return finish(onDevice(fromTypedArray(data, [data.length], opts.dtype), opts), opts);
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const flat: (number | boolean)[] = shape.length
    ? ((data as unknown[]).flat(Infinity as 1) as (number | boolean)[])
    : [data as number | boolean];
  const expected = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== expected || flat.some((v) => typeof v !== typeof flat[0])) {
    throw new TypeError('tensor(): nested arrays must be rectangular and hold only numbers or only booleans');
  }
  const isBool = typeof flat[0] === 'boolean';
  const values = isBool ? Uint8Array.from(flat as boolean[], (b) => (b ? 1 : 0)) : Float64Array.from(flat as number[]);
  const t = fromTypedArray(values, shape, isBool ? 'bool' : 'float64');
  const want = opts.dtype ?? (isBool ? 'bool' : 'float32');
  const out = want === t.dtype ? t : t.to(want);
  if (out !== t) t.dispose();
  return finish(onDevice(out, opts), opts);
}

/**
 * A CPU tensor holding a copy of `data`, shaped `shape`. The dtype is the array's own, or `dtype` when the
 * array holds that type's raw elements (Uint16Array for float16 / bfloat16, Uint8Array for bool).
 */
export function fromTypedArray(data: TypedArray, shape?: number[], dtype?: DType): Tensor {
  const natural = dtypeOfArray(data);
  const d = dtype ?? natural;
  if (d === undefined) throw new TypeError('fromTypedArray: pass the dtype for a Uint16Array (float16 or bfloat16)');
  if (natural !== undefined && natural !== d && !(natural === 'uint8' && d === 'bool')) {
    // The values are of another type: copy them in their own type, then convert as PyTorch would.
    const t = fromTypedArray(data, shape);
    try {
      return t.to(d);
    } finally {
      t.dispose();
    }
  }
  return wrap(native.fromBytes(data, shape ?? [data.length], d));
}

/** A CPU tensor of `dtype` whose elements are the raw little-endian bytes `bytes` (copied). */
export function fromBytes(bytes: Uint8Array, shape: number[], dtype: DType): Tensor {
  return wrap(native.fromBytes(bytes, shape, dtype));
}

const opts4 = (o: TensorOptions) => [o.dtype ?? 'float32', null, o.device ?? null, null] as const;

export function zeros(shape: Shape, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('zeros', shapeOf(shape), ...opts4(o))), o);
}
export function ones(shape: Shape, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('ones', shapeOf(shape), ...opts4(o))), o);
}
export function empty(shape: Shape, o: TensorOptions & { memoryFormat?: MemoryFormat } = {}): Tensor {
  return finish(wrap(call('empty.memory_format', shapeOf(shape), ...opts4(o), o.memoryFormat ?? null)), o);
}
export function full(shape: Shape, value: number | boolean, o: TensorOptions = {}): Tensor {
  const dtype = o.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32');
  return finish(wrap(call('full', shapeOf(shape), value, dtype, null, o.device ?? null, null)), o);
}
/** Standard normal samples from the global generator (torch.manualSeed). */
export function randn(shape: Shape, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('randn', shapeOf(shape), ...opts4(o))), o);
}
/** Uniform samples in [0, 1). */
export function rand(shape: Shape, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('rand', shapeOf(shape), ...opts4(o))), o);
}
/** Integers uniform in [low, high), int64 unless dtype is given. */
export function randint(low: number, high: number, shape: Shape, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('randint.low', low, high, shapeOf(shape), o.dtype ?? 'int64', null, o.device ?? null, null)), o);
}
export function randperm(n: number, o: TensorOptions = {}): Tensor {
  return wrap(call('randperm', n, o.dtype ?? 'int64', null, o.device ?? null, null));
}
/** arange(end) or arange(start, end, step); int64 when all bounds are integers, as PyTorch infers. */
export function arange(start: number, end?: number, step = 1, o: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const dtype = o.dtype ?? ([s, e, step].every(Number.isInteger) ? 'int64' : 'float32');
  return finish(wrap(call('arange.start_step', s, e, step, dtype, null, o.device ?? null, null)), o);
}
export function linspace(start: number, end: number, steps: number, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('linspace', start, end, steps, ...opts4(o))), o);
}
export function eye(n: number, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('eye', n, ...opts4(o))), o);
}
export function scalarTensor(value: number, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('scalar_tensor', value, ...opts4(o))), o);
}

const likeOpts = (o: TensorOptions) => [o.dtype ?? null, null, o.device ?? null, null, null] as const;
export function zerosLike(t: Tensor, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('zeros_like', t.h, ...likeOpts(o))), o);
}
export function onesLike(t: Tensor, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('ones_like', t.h, ...likeOpts(o))), o);
}
export function emptyLike(t: Tensor, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('empty_like', t.h, ...likeOpts(o))), o);
}
export function randnLike(t: Tensor, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('randn_like', t.h, ...likeOpts(o))), o);
}
export function fullLike(t: Tensor, value: number, o: TensorOptions = {}): Tensor {
  return finish(wrap(call('full_like', t.h, value, ...likeOpts(o))), o);
}
