// A small command-line parser: `--name value`, `--name=value`, bare `--flag`, positionals, `key=value` overrides.

export class UsageError extends Error {}

export interface Parsed {
  flags: Map<string, string>;
  positionals: string[];
}

/** Parses argv; `booleans` are the flags that take no value. */
export function parse(argv: string[], booleans: readonly string[] = []): Parsed {
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (eq >= 0) flags.set(name, a.slice(eq + 1));
    else if (booleans.includes(name)) flags.set(name, 'true');
    else if (i + 1 < argv.length) flags.set(name, argv[++i]);
    else throw new UsageError(`--${name} needs a value`);
  }
  return { flags, positionals };
}

/** Typed access to parsed flags; every flag read is recorded, so that unknown ones can be refused. */
export class Flags {
  readonly #seen = new Set<string>();
  constructor(readonly parsed: Parsed, readonly command: string) {}

  string(name: string, fallback?: string): string {
    this.#seen.add(name);
    const v = this.parsed.flags.get(name) ?? fallback;
    if (v === undefined) throw new UsageError(`${this.command}: --${name} is required`);
    return v;
  }
  optional(name: string): string | undefined {
    this.#seen.add(name);
    return this.parsed.flags.get(name);
  }
  number(name: string, fallback?: number): number {
    const raw = this.optional(name);
    if (raw === undefined) {
      if (fallback === undefined) throw new UsageError(`${this.command}: --${name} is required`);
      return fallback;
    }
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new UsageError(`${this.command}: --${name} must be a number, got '${raw}'`);
    return v;
  }
  int(name: string, fallback?: number): number {
    const v = this.number(name, fallback);
    if (!Number.isInteger(v)) throw new UsageError(`${this.command}: --${name} must be an integer, got ${v}`);
    return v;
  }
  bool(name: string, fallback = false): boolean {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes'].includes(raw)) return true;
    if (['0', 'false', 'no'].includes(raw)) return false;
    throw new UsageError(`${this.command}: --${name} must be 0 or 1, got '${raw}'`);
  }
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.string(name, fallback);
    if (!choices.includes(v as T)) throw new UsageError(`${this.command}: --${name} must be one of ${choices.join(', ')}, got '${v}'`);
    return v as T;
  }
  /** Refuses flags no reader asked for (call after reading them all). */
  done(): void {
    const unknown = [...this.parsed.flags.keys()].filter((k) => !this.#seen.has(k));
    if (unknown.length) throw new UsageError(`${this.command}: unknown option ${unknown.map((u) => `--${u}`).join(', ')}`);
  }
}

/** '2x224,6x96' -> [{n: 2, size: 224}, {n: 6, size: 96}]. */
export function parseCrops(spec: string): { n: number; size: number }[] {
  return spec.split(',').map((part) => {
    const m = /^\s*(\d+)x(\d+)\s*$/.exec(part);
    if (!m) throw new UsageError(`crops: '${part}' is not NxSIZE (e.g. 2x224,6x96)`);
    return { n: Number(m[1]), size: Number(m[2]) };
  });
}
