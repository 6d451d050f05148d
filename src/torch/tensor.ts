// The Tensor: one JS object owning one at::Tensor reference, with PyTorch's methods in camelCase.
import { inspect } from 'node:util';
import { native, type Handle } from './native.js';
import { track } from './scope.js';
import { type DType, type Device, type MemoryFormat, type TypedArray, isDType, viewAs } from './dtype.js';

const opIds = new Map<string, number>();

/** The dispatcher id of 'name.overload' (namespace aten unless given as 'ns::name.overload'). */
export function opId(qualified: string): number {
  let id = opIds.get(qualified);
  if (id === undefined) {
    const full = qualified.includes('::') ? qualified : `aten::${qualified}`;
    const dot = full.indexOf('.');
    id = dot < 0 ? native.opId(full, '') : native.opId(full.slice(0, dot), full.slice(dot + 1));
    opIds.set(qualified, id);
  }
  return id;
}

/** Calls an operator with positional native arguments (handles, numbers, ...); returns the raw result. */
export function call(op: string, ...args: unknown[]): any {
  return native.call(opId(op), ...args);
}

/** Calls an in-place operator, discarding the result (the caller holds the tensor already). */
export function run(op: string, ...args: unknown[]): void {
  native.run(opId(op), ...args);
}

/** Wraps a result that is one tensor handle. */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}

/** Wraps every tensor handle in a raw result (arrays nested). */
export function wrapAll(v: unknown): any {
  if (Array.isArray(v)) return v.map(wrapAll);
  if (v !== null && typeof v === 'object') return new Tensor(v as Handle);
  return v;
}

export const handles = (ts: readonly Tensor[]): Handle[] => ts.map((t) => t.h);

/** A slice for index(): `{start, end, step}`, or a string such as ':', '1:3', '::2', '-2:'. */
export type Slice = { start?: number | null; end?: number | null; step?: number };
/** One item of index(): a number selects, a slice narrows, null inserts a dim, '...' skips dims, a Tensor gathers. */
export type IndexItem = number | null | string | Slice | Tensor;

function parseSlice(s: string): Slice {
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3) throw new Error(`index: '${s}' is not a slice (use 'start:end:step')`);
  const num = (p: string | undefined) => (p === undefined || p.trim() === '' ? null : Number(p));
  const [start, end, step] = [num(parts[0]), num(parts[1]), num(parts[2])];
  for (const v of [start, end, step]) {
    if (v !== null && !Number.isInteger(v)) throw new Error(`index: '${s}' is not a slice of integers`);
  }
  return { start, end, step: step ?? 1 };
}

const INT64_MAX = Number.MAX_SAFE_INTEGER;

/** torch.Tensor. Methods return new tensors; names ending in '_' work in place and return `this`. */
export class Tensor {
  #h: Handle | null;
  /** Set by keep(): tidy() leaves this tensor alone. */
  kept = false;
  readonly isTensor = true;

  constructor(h: Handle) {
    this.#h = h;
    track(this);
  }

  /** The native handle; throws once disposed. */
  get h(): Handle {
    if (this.#h === null) throw new Error('Tensor used after dispose()');
    return this.#h;
  }

  /** Releases the native tensor now (idempotent). */
  dispose(): void {
    if (this.#h !== null) {
      native.dispose(this.#h);
      this.#h = null;
    }
  }

  get isDisposed(): boolean {
    return this.#h === null;
  }

  /** Makes this object refer to `src`'s tensor (as `param.data = src`); `src` is left disposed. */
  setData_(src: Tensor): this {
    const h = src.h;
    src.#h = null;
    if (this.#h !== null) native.dispose(this.#h);
    this.#h = h;
    return this;
  }

  // ---- metadata
  get shape(): number[] {
    return native.shape(this.h);
  }
  size(dim?: number): any {
    return dim === undefined ? this.shape : this.shape.at(dim);
  }
  get dtype(): DType {
    return native.dtype(this.h) as DType;
  }
  get device(): Device {
    return native.device(this.h);
  }
  get ndim(): number {
    return native.dim(this.h);
  }
  dim(): number {
    return native.dim(this.h);
  }
  numel(): number {
    return native.numel(this.h);
  }
  stride(): number[] {
    return native.strides(this.h);
  }
  storageOffset(): number {
    return native.storageOffset(this.h);
  }
  isContiguous(memoryFormat: MemoryFormat = 'contiguous'): boolean {
    return native.isContiguous(this.h, memoryFormat);
  }
  get isCuda(): boolean {
    return this.device.startsWith('cuda');
  }

  // ---- data out
  item(): number {
    return native.item(this.h) as number;
  }
  /** The elements, row-major: Float32Array for float32/float16/bfloat16, BigInt64Array for int64, ... */
  toTypedArray(): TypedArray {
    const d = this.dtype;
    if (d === 'float16' || d === 'bfloat16') {
      const f = this.to('float32');
      try {
        return f.toTypedArray();
      } finally {
        f.dispose();
      }
    }
    return viewAs(native.toBytes(this.h), d);
  }
  /** Raw bytes of the elements in their own dtype, row-major. */
  toBytes(): Uint8Array {
    return new Uint8Array(native.toBytes(this.h));
  }
  /** Nested arrays of numbers (booleans for bool), as PyTorch's tolist(). */
  tolist(): any {
    const flat = Array.from(this.toTypedArray() as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
    const data = this.dtype === 'bool' ? flat.map((v) => v !== 0) : flat;
    const shape = this.shape;
    const build = (d: number, off: number): any => {
      if (d === shape.length) return data[off];
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[d] }, (_, i) => build(d + 1, off + i * stride));
    };
    return build(0, 0);
  }

  // ---- autograd
  get requiresGrad(): boolean {
    return native.requiresGrad(this.h);
  }
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this.h, on);
    return this;
  }
  /** The accumulated gradient (a new reference each read), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.h);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.h, g === null ? null : g.h);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.h);
  }
  get gradFn(): string | null {
    return native.gradFn(this.h);
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    native.backward([this.h], gradient ? [gradient.h] : null, opts.retainGraph);
  }
  detach(): Tensor {
    return wrap(call('detach', this.h));
  }
  detach_(): this {
    run('detach_', this.h);
    return this;
  }

  // ---- conversion
  /** to(dtype) / to(device) / to({dtype, device, memoryFormat, copy}). */
  to(arg: DType | Device | { dtype?: DType; device?: Device; memoryFormat?: MemoryFormat; copy?: boolean }): Tensor {
    const o = typeof arg === 'string' ? (isDType(arg) ? { dtype: arg } : { device: arg }) : arg;
    return wrap(
      call('to.dtype_layout', this.h, o.dtype ?? null, null, o.device ?? null, null, false, o.copy ?? false, o.memoryFormat ?? null),
    );
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  half(): Tensor {
    return this.to('float16');
  }
  bfloat16(): Tensor {
    return this.to('bfloat16');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }
  contiguous(memoryFormat: MemoryFormat = 'contiguous'): Tensor {
    return wrap(call('contiguous', this.h, memoryFormat));
  }
  clone(memoryFormat: MemoryFormat = 'preserve'): Tensor {
    return wrap(call('clone', this.h, memoryFormat));
  }

  // ---- arithmetic (a number takes the Scalar overload)
  add(o: Tensor | number, alpha = 1): Tensor {
    return wrap(typeof o === 'number' ? call('add.Scalar', this.h, o, alpha) : call('add.Tensor', this.h, o.h, alpha));
  }
  sub(o: Tensor | number, alpha = 1): Tensor {
    return wrap(typeof o === 'number' ? call('sub.Scalar', this.h, o, alpha) : call('sub.Tensor', this.h, o.h, alpha));
  }
  mul(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? call('mul.Scalar', this.h, o) : call('mul.Tensor', this.h, o.h));
  }
  div(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? call('div.Scalar', this.h, o) : call('div.Tensor', this.h, o.h));
  }
  pow(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? call('pow.Tensor_Scalar', this.h, o) : call('pow.Tensor_Tensor', this.h, o.h));
  }
  remainder(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? call('remainder.Scalar', this.h, o) : call('remainder.Tensor', this.h, o.h));
  }
  maximum(o: Tensor): Tensor {
    return wrap(call('maximum', this.h, o.h));
  }
  minimum(o: Tensor): Tensor {
    return wrap(call('minimum', this.h, o.h));
  }
  neg(): Tensor {
    return wrap(call('neg', this.h));
  }
  abs(): Tensor {
    return wrap(call('abs', this.h));
  }
  exp(): Tensor {
    return wrap(call('exp', this.h));
  }
  log(): Tensor {
    return wrap(call('log', this.h));
  }
  log1p(): Tensor {
    return wrap(call('log1p', this.h));
  }
  sqrt(): Tensor {
    return wrap(call('sqrt', this.h));
  }
  rsqrt(): Tensor {
    return wrap(call('rsqrt', this.h));
  }
  square(): Tensor {
    return wrap(call('square', this.h));
  }
  reciprocal(): Tensor {
    return wrap(call('reciprocal', this.h));
  }
  sin(): Tensor {
    return wrap(call('sin', this.h));
  }
  cos(): Tensor {
    return wrap(call('cos', this.h));
  }
  tanh(): Tensor {
    return wrap(call('tanh', this.h));
  }
  sigmoid(): Tensor {
    return wrap(call('sigmoid', this.h));
  }
  relu(): Tensor {
    return wrap(call('relu', this.h));
  }
  sign(): Tensor {
    return wrap(call('sign', this.h));
  }
  floor(): Tensor {
    return wrap(call('floor', this.h));
  }
  ceil(): Tensor {
    return wrap(call('ceil', this.h));
  }
  round(): Tensor {
    return wrap(call('round', this.h));
  }
  /** clamp(min, max): either bound may be null. */
  clamp(min: number | null = null, max: number | null = null): Tensor {
    return wrap(call('clamp', this.h, min, max));
  }
  clampMin(min: number): Tensor {
    return wrap(call('clamp_min', this.h, min));
  }
  matmul(o: Tensor): Tensor {
    return wrap(call('matmul', this.h, o.h));
  }
  mm(o: Tensor): Tensor {
    return wrap(call('mm', this.h, o.h));
  }
  bmm(o: Tensor): Tensor {
    return wrap(call('bmm', this.h, o.h));
  }
  dot(o: Tensor): Tensor {
    return wrap(call('dot', this.h, o.h));
  }
  softmax(dim: number, dtype?: DType): Tensor {
    return wrap(call('softmax.int', this.h, dim, dtype ?? null));
  }
  logSoftmax(dim: number, dtype?: DType): Tensor {
    return wrap(call('log_softmax.int', this.h, dim, dtype ?? null));
  }

  // ---- comparison and logic
  eq(o: Tensor | number): Tensor {
    return this.#cmp('eq', o);
  }
  ne(o: Tensor | number): Tensor {
    return this.#cmp('ne', o);
  }
  lt(o: Tensor | number): Tensor {
    return this.#cmp('lt', o);
  }
  le(o: Tensor | number): Tensor {
    return this.#cmp('le', o);
  }
  gt(o: Tensor | number): Tensor {
    return this.#cmp('gt', o);
  }
  ge(o: Tensor | number): Tensor {
    return this.#cmp('ge', o);
  }
  #cmp(name: string, o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? call(`${name}.Scalar`, this.h, o) : call(`${name}.Tensor`, this.h, o.h));
  }
  logicalAnd(o: Tensor): Tensor {
    return wrap(call('logical_and', this.h, o.h));
  }
  logicalOr(o: Tensor): Tensor {
    return wrap(call('logical_or', this.h, o.h));
  }
  logicalNot(): Tensor {
    return wrap(call('logical_not', this.h));
  }
  isnan(): Tensor {
    return wrap(call('isnan', this.h));
  }
  isfinite(): Tensor {
    return wrap(call('isfinite', this.h));
  }
  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return call('allclose', this.h, o.h, rtol, atol) as boolean;
  }
  equal(o: Tensor): boolean {
    return call('equal', this.h, o.h) as boolean;
  }
  /** where(condition, this, other): elements of this where condition holds, else of other. */
  where(condition: Tensor, other: Tensor | number): Tensor {
    return wrap(
      typeof other === 'number' ? call('where.ScalarOther', condition.h, this.h, other) : call('where.self', condition.h, this.h, other.h),
    );
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return wrap(call('masked_fill.Scalar', this.h, mask.h, value));
  }

  // ---- reductions: dim may be a number or a list; omitted, over all elements
  sum(dim?: number | number[] | null, keepdim = false, dtype?: DType): Tensor {
    return wrap(
      dim === undefined || dim === null ? call('sum', this.h, dtype ?? null) : call('sum.dim_IntList', this.h, dim, keepdim, dtype ?? null),
    );
  }
  mean(dim?: number | number[] | null, keepdim = false, dtype?: DType): Tensor {
    return wrap(
      dim === undefined || dim === null ? call('mean', this.h, dtype ?? null) : call('mean.dim', this.h, dim, keepdim, dtype ?? null),
    );
  }
  /** Standard deviation; unbiased (Bessel's correction) by default as in PyTorch. */
  std(dim?: number | number[] | null, unbiased = true, keepdim = false): Tensor {
    return wrap(dim === undefined || dim === null ? call('std', this.h, unbiased) : call('std.dim', this.h, dim, unbiased, keepdim));
  }
  var(dim?: number | number[] | null, unbiased = true, keepdim = false): Tensor {
    return wrap(dim === undefined || dim === null ? call('var', this.h, unbiased) : call('var.dim', this.h, dim, unbiased, keepdim));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return wrap(dim === undefined ? call('prod', this.h, null) : call('prod.dim_int', this.h, dim, keepdim, null));
  }
  /** p-norm over all elements, or over `dim`. */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return wrap(dim === undefined ? call('norm.Scalar', this.h, p) : call('norm.ScalarOpt_dim', this.h, p, dim, keepdim));
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return wrap(call('logsumexp', this.h, dim, keepdim));
  }
  cumsum(dim: number, dtype?: DType): Tensor {
    return wrap(call('cumsum', this.h, dim, dtype ?? null));
  }
  /** max() over all elements; max(dim) gives {values, indices}. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): any {
    if (dim === undefined) return wrap(call('max', this.h));
    const [values, indices] = call('max.dim', this.h, dim, keepdim);
    return { values: wrap(values), indices: wrap(indices) };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): any {
    if (dim === undefined) return wrap(call('min', this.h));
    const [values, indices] = call('min.dim', this.h, dim, keepdim);
    return { values: wrap(values), indices: wrap(indices) };
  }
  amax(dim: number | number[] = [], keepdim = false): Tensor {
    return wrap(call('amax', this.h, dim, keepdim));
  }
  amin(dim: number | number[] = [], keepdim = false): Tensor {
    return wrap(call('amin', this.h, dim, keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(call('argmax', this.h, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return wrap(call('argmin', this.h, dim ?? null, keepdim));
  }
  all(): Tensor {
    return wrap(call('all', this.h));
  }
  any(): Tensor {
    return wrap(call('any', this.h));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = call('topk', this.h, k, dim, largest, sorted);
    return { values: wrap(values), indices: wrap(indices) };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = call('sort', this.h, dim, descending);
    return { values: wrap(values), indices: wrap(indices) };
  }
  argsort(dim = -1, descending = false): Tensor {
    return wrap(call('argsort', this.h, dim, descending));
  }

  // ---- shape and views
  reshape(...shape: number[] | [number[]]): Tensor {
    return wrap(call('reshape', this.h, flatShape(shape)));
  }
  view(...shape: number[] | [number[]]): Tensor {
    return wrap(call('view', this.h, flatShape(shape)));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return wrap(call('flatten.using_ints', this.h, startDim, endDim));
  }
  unflatten(dim: number, sizes: number[]): Tensor {
    return wrap(call('unflatten.int', this.h, dim, sizes));
  }
  squeeze(dim?: number): Tensor {
    return wrap(dim === undefined ? call('squeeze', this.h) : call('squeeze.dim', this.h, dim));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(call('unsqueeze', this.h, dim));
  }
  permute(...dims: number[] | [number[]]): Tensor {
    return wrap(call('permute', this.h, flatShape(dims)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return wrap(call('transpose.int', this.h, dim0, dim1));
  }
  t(): Tensor {
    return wrap(call('t', this.h));
  }
  get T(): Tensor {
    return this.t();
  }
  expand(...shape: number[] | [number[]]): Tensor {
    return wrap(call('expand', this.h, flatShape(shape), false));
  }
  expandAs(o: Tensor): Tensor {
    return wrap(call('expand_as', this.h, o.h));
  }
  repeat(...repeats: number[] | [number[]]): Tensor {
    return wrap(call('repeat', this.h, flatShape(repeats)));
  }
  repeatInterleave(repeats: number, dim?: number): Tensor {
    return wrap(call('repeat_interleave.self_int', this.h, repeats, dim ?? null));
  }
  flip(dims: number | number[]): Tensor {
    return wrap(call('flip', this.h, typeof dims === 'number' ? [dims] : dims));
  }
  roll(shifts: number | number[], dims: number | number[]): Tensor {
    return wrap(call('roll', this.h, shifts, dims));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(call('narrow', this.h, dim, start, length));
  }
  select(dim: number, index: number): Tensor {
    return wrap(call('select.int', this.h, dim, index));
  }
  /** aten::slice: elements start..end (exclusive) by step along dim. */
  slice(dim = 0, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return wrap(call('slice.Tensor', this.h, dim, start, end, step));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return (call('chunk', this.h, chunks, dim) as Handle[]).map(wrap);
  }
  split(size: number | number[], dim = 0): Tensor[] {
    const r = typeof size === 'number' ? call('split.Tensor', this.h, size, dim) : call('split_with_sizes', this.h, size, dim);
    return (r as Handle[]).map(wrap);
  }
  unbind(dim = 0): Tensor[] {
    return (call('unbind.int', this.h, dim) as Handle[]).map(wrap);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(call('index_select', this.h, dim, index.h));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(call('gather', this.h, dim, index.h, false));
  }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return wrap(
      typeof src === 'number' ? call('scatter.value', this.h, dim, index.h, src) : call('scatter.src', this.h, dim, index.h, src.h),
    );
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(call('scatter_add', this.h, dim, index.h, src.h));
  }
  nonzero(): Tensor {
    return wrap(call('nonzero', this.h));
  }

  /**
   * Basic and advanced indexing as t[...] in PyTorch: numbers select, slices (':', '1:3', '::2', {start,end,step})
   * narrow, null adds a dim, '...' stands for the remaining dims, tensors gather (long or bool).
   */
  index(...items: IndexItem[]): Tensor {
    const { view, tensors } = this.#basicIndex(items);
    if (tensors.every((t) => t === null)) return view;
    try {
      return wrap(
        call(
          'index.Tensor',
          view.h,
          tensors.map((t) => (t === null ? null : t.h)),
        ),
      );
    } finally {
      view.dispose();
    }
  }

  /** Writes `value` into the elements index(...items) names, in place. */
  indexPut_(items: IndexItem[], value: Tensor | number): this {
    const { view, tensors } = this.#basicIndex(items);
    try {
      if (tensors.every((t) => t === null)) {
        if (typeof value === 'number') run('fill_.Scalar', view.h, value);
        else run('copy_', view.h, value.h, false);
      } else {
        const v = typeof value === 'number' ? wrap(call('scalar_tensor', value, this.dtype, null, this.device, null)) : value;
        try {
          run(
            'index_put_',
            view.h,
            tensors.map((t) => (t === null ? null : t.h)),
            v.h,
            false,
          );
        } finally {
          if (v !== value) v.dispose();
        }
      }
    } finally {
      view.dispose();
    }
    return this;
  }

  #basicIndex(items: IndexItem[]): { view: Tensor; tensors: (Tensor | null)[] } {
    const ndim = this.ndim;
    const consuming = items.filter((i) => i !== null && i !== '...').length;
    if (items.filter((i) => i === '...').length > 1) throw new Error('index: at most one ellipsis (...)');
    if (consuming > ndim) throw new Error(`index: too many indices (${consuming}) for a tensor of ${ndim} dims`);
    let view: Tensor = wrap(call('alias', this.h));
    const tensors: (Tensor | null)[] = [];
    let d = 0;
    const step = (next: Tensor) => {
      view.dispose();
      view = next;
    };
    for (const item of items) {
      if (item === '...') {
        const skip = ndim - consuming;
        for (let k = 0; k < skip; k++) tensors.push(null);
        d += skip;
      } else if (item === null) {
        step(view.unsqueeze(d));
        tensors.push(null);
        d++;
      } else if (typeof item === 'number') {
        const n = view.shape[d];
        if (!Number.isInteger(item) || item < -n || item >= n) {
          view.dispose();
          throw new RangeError(`index ${item} is out of bounds for dimension ${d} with size ${n}`);
        }
        step(view.select(d, item));
      } else if (item instanceof Tensor) {
        tensors.push(item);
        d++;
      } else {
        const s = typeof item === 'string' ? parseSlice(item) : item;
        step(view.slice(d, s.start ?? null, s.end ?? INT64_MAX, s.step ?? 1));
        tensors.push(null);
        d++;
      }
    }
    while (tensors.length && tensors[tensors.length - 1] === null) tensors.pop();
    return { view, tensors };
  }

  // ---- in place
  add_(o: Tensor | number, alpha = 1): this {
    if (typeof o === 'number') run('add_.Scalar', this.h, o, alpha);
    else run('add_.Tensor', this.h, o.h, alpha);
    return this;
  }
  sub_(o: Tensor | number, alpha = 1): this {
    if (typeof o === 'number') run('sub_.Scalar', this.h, o, alpha);
    else run('sub_.Tensor', this.h, o.h, alpha);
    return this;
  }
  mul_(o: Tensor | number): this {
    if (typeof o === 'number') run('mul_.Scalar', this.h, o);
    else run('mul_.Tensor', this.h, o.h);
    return this;
  }
  div_(o: Tensor | number): this {
    if (typeof o === 'number') run('div_.Scalar', this.h, o);
    else run('div_.Tensor', this.h, o.h);
    return this;
  }
  clamp_(min: number | null = null, max: number | null = null): this {
    run('clamp_', this.h, min, max);
    return this;
  }
  copy_(src: Tensor): this {
    run('copy_', this.h, src.h, false);
    return this;
  }
  fill_(value: number): this {
    run('fill_.Scalar', this.h, value);
    return this;
  }
  zero_(): this {
    run('zero_', this.h);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    run('normal_', this.h, mean, std, null);
    return this;
  }
  uniform_(from = 0, to = 1): this {
    run('uniform_', this.h, from, to, null);
    return this;
  }
  exp_(): this {
    run('exp_', this.h);
    return this;
  }
  relu_(): this {
    run('relu_', this.h);
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    run('masked_fill_.Scalar', this.h, mask.h, value);
    return this;
  }
  /** self[index[i]] += alpha * source[i] along `dim`. */
  indexAdd_(dim: number, index: Tensor, source: Tensor, alpha = 1): this {
    run('index_add_', this.h, dim, index.h, source.h, alpha);
    return this;
  }
  /** self[index[i]] = source[i] along `dim`. */
  indexCopy_(dim: number, index: Tensor, source: Tensor): this {
    run('index_copy_', this.h, dim, index.h, source.h);
    return this;
  }
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    run('addcmul_', this.h, t1.h, t2.h, value);
    return this;
  }

  toString(): string {
    if (this.#h === null) return 'Tensor(disposed)';
    const head = `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}`;
    if (this.numel() > 64) return `${head})`;
    return `${head}, values=${JSON.stringify(this.tolist())})`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

function flatShape(args: number[] | [number[]]): number[] {
  return Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
}
