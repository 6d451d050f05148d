// One input as the bytes a coverage-guided fuzzer mutates: a target's files packed into one buffer, and back; and
// an input written as the reader sees it.
// A target whose seeds all have one file (input.npy, ...) gets that file's bytes as they are. Otherwise (a dataset's
// images and labels, CIFAR's two batch names, IDX files gzipped or not) each file is a line `@swav-file NAME`
// followed by its bytes, up to the next such line: markers survive byte mutations better than length fields, and a
// name that is not among the target's is dropped with its bytes (so no input writes outside its directory).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Seed } from './mutate.js';

const MARK = Buffer.from('\n@swav-file ', 'latin1');

/** The names of the files a target's seeds use, sorted. */
export function fileNames(seeds: Seed[]): string[] {
  return [...new Set(seeds.flatMap((s) => Object.keys(s.files)))].sort();
}

export function pack(files: Record<string, Uint8Array>, names: string[]): Buffer {
  if (names.length === 1) return Buffer.from(files[names[0]] ?? new Uint8Array(0));
  return Buffer.concat(names.filter((n) => n in files).flatMap((n) => [MARK, Buffer.from(`${n}\n`, 'latin1'), files[n]]));
}

export function unpack(data: Uint8Array, names: string[]): Record<string, Uint8Array> {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (names.length === 1) return { [names[0]]: b };
  const files: Record<string, Uint8Array> = {};
  for (let at = b.indexOf(MARK); at >= 0;) {
    const nameEnd = b.indexOf(10, at + MARK.length);
    if (nameEnd < 0) break;
    const next = b.indexOf(MARK, nameEnd + 1);
    const name = b.toString('latin1', at + MARK.length, nameEnd);
    if (names.includes(name) && !(name in files)) files[name] = b.subarray(nameEnd + 1, next < 0 ? b.length : next);
    at = next;
  }
  return files;
}

/** Writes an input as the reader will see it: exactly these files in `dir`. */
export function writeInput(dir: string, files: Record<string, Uint8Array>): void {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (!(f in files)) rmSync(join(dir, f), { recursive: true, force: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
}
