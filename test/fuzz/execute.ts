// One execution of a target's reader on the files of a directory, and what its outcome says: a value or an
// ordinary, clear Error is fine; anything else is a finding.
import { readFileSync, writeFileSync } from 'node:fs';
import { torch } from '../../src/index.js';
import { writeInput } from './bytes.js';
import type { Target } from './targets.js';
import type { WorkerMessage } from './worker.js';

/** Findings made in the process that ran the input, then those only its parent sees ('jazzer': one Jazzer.js reports
 * itself, a bug detector's, jazzer-run.ts). */
export type FindingKind =
  | 'non-error'
  | 'internal'
  | 'unclear'
  | 'invalid'
  | 'pollution'
  | 'leak'
  | 'allocation'
  | 'slow'
  | 'crash'
  | 'hang'
  | 'memory'
  | 'jazzer';

export interface Outcome {
  kind: 'ok' | 'error' | FindingKind;
  /** The outcome with paths and numbers taken out: the same signature is the same behaviour. */
  signature: string;
  /** What happened, in full. */
  message: string;
}

export const isFinding = (o: Outcome) => o.kind !== 'ok' && o.kind !== 'error';

/** Peak memory over what the process held before, beyond which a small input is allocating without bound
 * (targets whose format allows large allocations, bounded otherwise, say their own). */
export const ALLOCATION_LIMIT = 512 * 2 ** 20;
/** An execution this long on a small input is a denial of service in waiting. */
export const SLOW_MS = 3000;
/** Resident memory past the first execution's by this much is collected first (garbage would hide a peak). */
const GARBAGE = 256 * 2 ** 20;
let firstRss = 0;

// The built-in errors a reader throws by accident (a bad index, a bad length), never on purpose.
const INTERNAL: (new () => Error)[] = [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError];

function status(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Restarts the peak resident size (VmHWM) from the current one; false where the kernel does not allow it. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

// The built-in prototypes a reader that writes a file's keys into objects could pollute ('__proto__', 'constructor').
const PROTOTYPES: [string, object][] = [Object, Array, Function, String, Number, Boolean, Map, Set, Promise, RegExp, Error, Date].map(
  (c) => [c.name, c.prototype],
);
const snapshot = () => PROTOTYPES.map(([, p]) => new Map(Reflect.ownKeys(p).map((k) => [k, Object.getOwnPropertyDescriptor(p, k)!.value])));
let prototypes = snapshot();

/** The properties of built-in prototypes changed since the last call that found some (or the first), and how. */
function pollution(): [string, string][] {
  const now = snapshot();
  const changes = PROTOTYPES.flatMap(([name], i) =>
    [...new Set([...prototypes[i].keys(), ...now[i].keys()])]
      .filter((k) => prototypes[i].get(k) !== now[i].get(k) || prototypes[i].has(k) !== now[i].has(k))
      .map((k): [string, string] => [
        `${name}.prototype[${JSON.stringify(String(k))}]`,
        !prototypes[i].has(k) ? 'added' : !now[i].has(k) ? 'deleted' : 'changed',
      ]),
  );
  if (changes.length) prototypes = now;
  return changes;
}

function disposeAll(v: unknown, seen = new Set<unknown>()): void {
  if (v instanceof torch.Tensor) return v.dispose();
  if (v === null || typeof v !== 'object' || seen.has(v) || ArrayBuffer.isView(v)) return;
  seen.add(v);
  const items = v instanceof Map ? v.values() : v instanceof Set ? v.values() : Object.values(v);
  for (const x of items) disposeAll(x, seen);
}

/**
 * A message as a signature: its first line (YAML's excerpts of the file follow), the path taken out, and every token
 * that is not a plain word (numbers, names from the file, quoted values) a '*', so that one check failing on many
 * inputs is one outcome.
 */
export function normalize(text: string, dir: string): string {
  return text
    .split('\n')[0]
    .split(dir)
    .join('<dir>')
    .replace(/"(?:[^"\\\n]|\\.)*"|'[^'\n]*'/g, '*')
    .split(/\s+/)
    .map((t) => (/^[A-Za-z][a-z]+[:,;.]?$/.test(t) || t === '<dir>' || t === '<dir>:' ? t : '*'))
    .join(' ')
    .replace(/\*( \*)+/g, '*')
    .slice(0, 240);
}

function judgeError(target: Target, e: unknown, dir: string): Outcome {
  if (!(e instanceof Error)) {
    const message = `threw ${typeof e}: ${String(e)}`;
    return { kind: 'non-error', signature: `non-error: ${typeof e}`, message };
  }
  const message = `${e.constructor.name}: ${e.message}`;
  const signature = `${e.constructor.name}: ${normalize(e.message, dir)}`;
  if (INTERNAL.some((c) => e instanceof c)) return { kind: 'internal', signature, message };
  const unclear = !e.message.trim()
    ? 'an empty message'
    : (target.unclear ?? /\bNaN\b|\bundefined\b|\[object /).test(e.message)
      ? 'a message with an unfilled value'
      : target.namesPath && !e.message.includes(dir)
        ? 'a message that does not name the file'
        : '';
  if (unclear) return { kind: 'unclear', signature: `${unclear}: ${signature}`, message };
  return { kind: 'error', signature, message };
}

/** Runs the target's reader once on `dir` and judges what it did. */
export async function execute(target: Target, dir: string): Promise<Outcome> {
  const live = torch.liveTensors();
  firstRss ||= status('VmRSS');
  if (status('VmRSS') > firstRss + GARBAGE) (globalThis as { gc?: () => void }).gc?.(); // runner.ts forks with --expose-gc
  const base = status('VmRSS');
  const peaks = resetPeak();
  const start = performance.now();
  let outcome: Outcome;
  try {
    const value = await target.read(dir);
    const wrong = target.check?.(value);
    disposeAll(value);
    outcome = wrong
      ? { kind: 'invalid', signature: `invalid: ${normalize(wrong, dir)}`, message: `read, but ${wrong}` }
      : { kind: 'ok', signature: 'ok', message: 'read' };
  } catch (e) {
    outcome = judgeError(target, e, dir);
  }
  const ms = performance.now() - start;
  const polluted = pollution();
  if (polluted.length) {
    return {
      kind: 'pollution',
      signature: `pollution: ${polluted.map(([p]) => p).join(', ')}`,
      message: `${polluted.map(([p, how]) => `${p} ${how}`).join(', ')}; ${outcome.message}`,
    };
  }
  const peak = peaks ? status('VmHWM') - base : 0;
  const leaked = torch.liveTensors() - live;
  if (peak > (target.limits?.bytes ?? ALLOCATION_LIMIT)) {
    return {
      kind: 'allocation',
      signature: `allocation: ${outcome.signature}`,
      message: `${Math.round(peak / 2 ** 20)} MiB at peak; ${outcome.message}`,
    };
  }
  if (ms > (target.limits?.ms ?? SLOW_MS))
    return { kind: 'slow', signature: `slow: ${outcome.signature}`, message: `${Math.round(ms)} ms; ${outcome.message}` };
  if (isFinding(outcome)) return outcome;
  if (leaked > 0)
    return { kind: 'leak', signature: `leak: ${outcome.signature}`, message: `${leaked} tensors left alive; ${outcome.message}` };
  return outcome;
}

/**
 * A child's executions (either engine's): each input written where the reader looks (so that a crash leaves it
 * behind), read and judged; the count and the outcomes not seen before sent to the parent every 250 ms, and by flush().
 */
export function executor(target: Target, input: string, send: (m: WorkerMessage) => void) {
  const seen = new Set<string>();
  let fresh: string[] = [];
  let beat = 0;
  let execs = 0;
  const flush = () => {
    send({ t: 'beat', execs, outcomes: fresh });
    fresh = [];
    beat = Date.now();
  };
  return {
    flush,
    get execs() {
      return execs;
    },
    async run(files: Record<string, Uint8Array>): Promise<Outcome> {
      writeInput(input, files);
      const o = await execute(target, input);
      execs++;
      if (!seen.has(o.signature)) {
        seen.add(o.signature);
        fresh.push(o.signature);
      }
      if (Date.now() - beat > 250) flush();
      return o;
    },
  };
}
