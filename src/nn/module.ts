// nn.Module: parameters, buffers and submodules under PyTorch's names, train/eval, state dicts, to().
import { Tensor, handles } from '../torch/tensor.js';
import { native } from '../torch/native.js';
import { keep } from '../torch/scope.js';
import { noGrad } from '../torch/autograd.js';
import { type DType, type Device, type MemoryFormat, isDType, isFloatingPoint } from '../torch/dtype.js';

export type StateDict = Record<string, Tensor> | Map<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export class StateDictError extends Error {}

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #nonPersistent = new Set<string>();
  readonly #modules = new Map<string, Module>();

  abstract forward(...args: any[]): any;

  /** Adds a parameter: it requires grad and is kept out of tidy() (the module owns it). */
  registerParameter(name: string, t: Tensor | null): Tensor {
    if (t !== null) keep(t.requiresGrad_(true));
    this.#parameters.set(name, t);
    return t as Tensor;
  }

  /** Adds a buffer (running statistics and the like); non-persistent ones stay out of the state dict. */
  registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor {
    if (t !== null) keep(t);
    this.#buffers.set(name, t);
    if (!persistent) this.#nonPersistent.add(name);
    return t as Tensor;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    this.#modules.set(name, m);
    return m;
  }

  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this.#modules.entries();
  }
  children(): Module[] {
    return [...this.#modules.values()];
  }

  /** This module ('' first) and every descendant, with dotted names. */
  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this.#modules) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }
  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  *namedParameters(prefix = '', recurse = true): IterableIterator<[string, Tensor]> {
    for (const [mp, m] of recurse ? this.namedModules(prefix) : [[prefix, this] as [string, Module]]) {
      for (const [n, p] of m.#parameters) if (p !== null) yield [mp ? `${mp}.${n}` : n, p];
    }
  }
  parameters(recurse = true): Tensor[] {
    return [...this.namedParameters('', recurse)].map(([, p]) => p);
  }

  *namedBuffers(prefix = '', recurse = true): IterableIterator<[string, Tensor]> {
    for (const [mp, m] of recurse ? this.namedModules(prefix) : [[prefix, this] as [string, Module]]) {
      for (const [n, b] of m.#buffers) if (b !== null) yield [mp ? `${mp}.${n}` : n, b];
    }
  }
  buffers(recurse = true): Tensor[] {
    return [...this.namedBuffers('', recurse)].map(([, b]) => b);
  }

  /** The submodule at a dotted path ('layer1.0.conv1'). */
  getSubmodule(path: string): Module {
    let m: Module = this;
    for (const part of path ? path.split('.') : []) {
      const next = m.#modules.get(part);
      if (!next) throw new Error(`${m.constructor.name} has no submodule '${part}' (in '${path}')`);
      m = next;
    }
    return m;
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Sets every parameter's gradient to None (setToNone) or to zero. */
  zeroGrad(setToNone = true): void {
    const ps = this.parameters();
    if (setToNone) return native.clearGrads(handles(ps));
    for (const g of native.grads(handles(ps))) {
      if (g) {
        const t = new Tensor(g);
        t.zero_();
        t.dispose();
      }
    }
  }

  /** Persistent parameters and buffers by PyTorch's key names, as detached tensors sharing their storage. */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [prefix, m] of this.namedModules()) {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [n, p] of m.#parameters) if (p !== null) out[key(n)] = p.detach();
      for (const [n, b] of m.#buffers) if (b !== null && !m.#nonPersistent.has(n)) out[key(n)] = b.detach();
    }
    return out;
  }

  /**
   * Copies `sd` (a plain object or a Map of name -> Tensor) into the parameters and buffers. Strict: every
   * key must match both ways. Not strict: returns the missing and unexpected keys, and fails when no key
   * matches at all (the silent failure of loading with the wrong prefix).
   */
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const given = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = new Map<string, Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [n, p] of m.#parameters) if (p !== null) own.set(key(n), p);
      for (const [n, b] of m.#buffers) if (b !== null && !m.#nonPersistent.has(n)) own.set(key(n), b);
    }
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const list = (ks: string[]) => ks.slice(0, 10).join(', ') + (ks.length > 10 ? `, ... (${ks.length} in all)` : '');
      throw new StateDictError(
        `Error loading the state dict into ${this.constructor.name}:` +
          (missingKeys.length ? `\n  missing keys: ${list(missingKeys)}` : '') +
          (unexpectedKeys.length ? `\n  unexpected keys: ${list(unexpectedKeys)}` : '') +
          '\n  (a "module." prefix from DistributedDataParallel? pass {strict: false} to load a part)',
      );
    }
    if (!strict && own.size > 0 && missingKeys.length === own.size) {
      throw new StateDictError(
        `no key of the state dict matches ${this.constructor.name}: it expects names such as ` +
          `'${[...own.keys()][0]}', the file has names such as '${[...given.keys()][0] ?? '(none)'}'`,
      );
    }
    const mismatched: string[] = [];
    for (const [k, dst] of own) {
      const src = given.get(k);
      if (src && src.shape.join() !== dst.shape.join()) {
        mismatched.push(
          `size mismatch for ${k}: copying a param with shape [${src.shape}] from the state dict, ` +
            `the shape in the current model is [${dst.shape}]`,
        );
      }
    }
    if (mismatched.length)
      throw new StateDictError(`Error loading the state dict into ${this.constructor.name}:\n  ${mismatched.join('\n  ')}`);
    noGrad(() => {
      for (const [k, dst] of own) {
        const src = given.get(k);
        if (src) dst.copy_(src);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Moves or converts parameters and buffers in place (the module's tensors keep their identity):
   * a dtype converts floating-point ones, a device all, a memory format the 4-d ones.
   */
  to(arg: DType | Device | MemoryFormat | { dtype?: DType; device?: Device; memoryFormat?: MemoryFormat }): this {
    const o =
      typeof arg !== 'string'
        ? arg
        : isDType(arg)
          ? { dtype: arg }
          : arg === 'channelsLast' || arg === 'contiguous' || arg === 'channelsLast3d'
            ? { memoryFormat: arg as MemoryFormat }
            : { device: arg };
    noGrad(() => {
      const convert = (t: Tensor, isParam: boolean) => {
        const dtype = o.dtype && isFloatingPoint(t.dtype) ? o.dtype : undefined;
        const memoryFormat = o.memoryFormat && t.ndim === 4 ? o.memoryFormat : undefined;
        if (!dtype && !o.device && !memoryFormat) return;
        const moved = t.to({ dtype, device: o.device, memoryFormat });
        t.setData_(moved);
        if (isParam) t.requiresGrad_(true);
      };
      for (const m of this.modules()) {
        for (const p of m.#parameters.values()) if (p) convert(p, true);
        for (const b of m.#buffers.values()) if (b) convert(b, false);
      }
    });
    return this;
  }

  /** Calls fn on every module, children first (as nn.Module.apply). */
  apply(fn: (m: Module) => void): this {
    for (const c of this.#modules.values()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Frees every parameter and buffer now. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m.#parameters.values()) p?.dispose();
      for (const b of m.#buffers.values()) b?.dispose();
    }
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel(), 0);
  }
}
