// torch.ops.<namespace>.<name>(...): every registered operator, its overload chosen from the arguments as
// PyTorch's binding does; torch.ops.aten.add.Tensor(...) names one overload. A trailing plain object holds
// keyword arguments (snake_case or camelCase).
import { native } from './native.js';
import { Tensor, opId, wrapAll } from './tensor.js';

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function toNative(v: unknown): unknown {
  if (v instanceof Tensor) return v.h;
  if (Array.isArray(v)) return v.map(toNative);
  return v;
}

function isKwargs(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Tensor);
}

function invoke(ids: number[], args: unknown[]): any {
  const last = args[args.length - 1];
  const kwargs = isKwargs(last) ? last : null;
  const positional = kwargs ? args.slice(0, -1) : args;
  const kw = kwargs && Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [snake(k), toNative(v)]));
  return wrapAll(native.callResolved(ids, positional.map(toNative), kw));
}

type OpFn = ((...args: unknown[]) => any) & { [overload: string]: (...args: unknown[]) => any };

function operator(ns: string, name: string): OpFn {
  const qualified = `${ns}::${name}`;
  const overloads = native.overloads(qualified);
  if (overloads.length === 0) throw new Error(`torch.ops.${ns}.${name}: no such operator`);
  const fn = (...args: unknown[]) =>
    invoke(
      overloads.map((o) => opId(o ? `${qualified}.${o}` : qualified)),
      args,
    );
  return new Proxy(fn, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && (overloads.includes(prop) || prop === 'default')) {
        const o = prop === 'default' ? '' : prop;
        return (...args: unknown[]) => invoke([opId(o ? `${qualified}.${o}` : qualified)], args);
      }
      return Reflect.get(target, prop, receiver);
    },
  }) as OpFn;
}

function namespace(ns: string): Record<string, OpFn> {
  const cache = new Map<string, OpFn>();
  return new Proxy(
    {},
    {
      get(_t, name) {
        if (typeof name !== 'string') return undefined;
        let f = cache.get(name);
        if (!f) cache.set(name, (f = operator(ns, name)));
        return f;
      },
    },
  );
}

/** torch.ops.aten.conv2d(x, w), torch.ops.aten.add.Tensor(a, b, {alpha: 2}), torch.ops.aten.sum(x, [1]). */
const namespaces = new Map<string, Record<string, OpFn>>();
export const ops: Record<string, Record<string, OpFn>> = new Proxy(
  {},
  {
    get(_t, ns) {
      if (typeof ns !== 'string') return undefined;
      let n = namespaces.get(ns);
      if (!n) namespaces.set(ns, (n = namespace(ns)));
      return n;
    },
  },
);

/** The schema of 'name.overload' (namespace aten by default), e.g. schema('conv2d'). */
export function schema(qualified: string): string {
  return native.schema(opId(qualified));
}
