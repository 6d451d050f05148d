// Scopes that dispose the tensors a step creates: tidy(fn) / keep(t), as in tfjs.
import type { Tensor } from './tensor.js';

const scopes: Set<Tensor>[] = [];

/** Called by every new Tensor: the innermost tidy() scope, if any, will dispose it. */
export function track(t: Tensor): void {
  const s = scopes[scopes.length - 1];
  if (s !== undefined) s.add(t);
}

/** Exempts `t` from every enclosing and future tidy(); its owner disposes it. */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

function collect(value: unknown, into: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as Tensor).isTensor === true) {
    into.add(value as Tensor);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, into, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    for (const v of Object.values(value)) collect(v, into, seen);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those it returns (in arrays, Maps and plain
 * objects too) and those passed to keep(). Returned tensors belong to the enclosing scope. Synchronous only.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) if (!t.kept) t.dispose();
    throw new Error('tidy() takes a synchronous function: its tensors are disposed when it returns');
  }
  const returned = new Set<Tensor>();
  collect(result, returned);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (returned.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}
