// One input as the bytes a coverage-guided fuzzer mutates: a target's files packed into one buffer, and back; and
// an input written as the reader sees it.
//
// A target whose seeds all have one file (input.npy, ...) gets that file's bytes as they are. Otherwise (a dataset's
// images and labels, CIFAR's two batch names, IDX files gzipped or not) each file is a line `@swav-file NAME`
// followed by its bytes, up to the next such line: markers survive byte mutations better than length fields, and a
// name that is not among the target's is dropped with its bytes (so no input writes outside its directory).
//
// A zip container (a PyTorch file) can also be given by its entries: `@swav-zip` and a line, then each entry as a line
// `@swav-entry NAME` and its bytes. Written out, it is a well-formed zip of those entries, so that inserting or
// removing bytes of data.pkl reaches the pickle reader instead of breaking the zip's offsets (as fast-check's 'entry'
// mutation does); the zip reader itself is fuzzed through the seeds given as they are.
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readEntry, readZipDirectory, ZipWriter } from '../../src/torch/io/zip.js';
import type { Seed } from './mutate.js';

const FILE = Buffer.from('\n@swav-file ', 'latin1');
const ZIP = Buffer.from('@swav-zip\n', 'latin1');
const ENTRY = Buffer.from('\n@swav-entry ', 'latin1');

/** The names of the files a target's seeds use, sorted. */
export function fileNames(seeds: Seed[]): string[] {
  return [...new Set(seeds.flatMap((s) => Object.keys(s.files)))].sort();
}

const section = (mark: Buffer, name: string, data: Uint8Array) => [mark, Buffer.from(`${name}\n`, 'utf8'), data];

/** The sections `MARK NAME\n BYTES` of `b`, in order (the first of a name wins). */
function sections(b: Buffer, mark: Buffer): [string, Buffer][] {
  const out = new Map<string, Buffer>();
  for (let at = b.indexOf(mark); at >= 0; ) {
    const nameEnd = b.indexOf(10, at + mark.length);
    if (nameEnd < 0) break;
    const next = b.indexOf(mark, nameEnd + 1);
    const name = b.toString('utf8', at + mark.length, nameEnd);
    if (!out.has(name)) out.set(name, b.subarray(nameEnd + 1, next < 0 ? b.length : next));
    at = next;
  }
  return [...out];
}

export function pack(files: Record<string, Uint8Array>, names: string[]): Buffer {
  if (names.length === 1) return Buffer.from(files[names[0]] ?? new Uint8Array(0));
  return Buffer.concat(names.filter((n) => n in files).flatMap((n) => section(FILE, n, files[n])));
}

export function unpack(data: Uint8Array, names: string[]): Record<string, Uint8Array> {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (names.length === 1) return { [names[0]]: b };
  return Object.fromEntries(sections(b, FILE).filter(([n]) => names.includes(n)));
}

/** A zip file's bytes as its entries (the form above), or undefined where they do not read as a zip. */
export function zipEntries(zip: Uint8Array, scratch: string): Buffer | undefined {
  const path = join(scratch, '.zip-entries');
  writeFileSync(path, zip);
  const fd = openSync(path, 'r');
  try {
    return Buffer.concat([ZIP, ...[...readZipDirectory(fd).values()].flatMap((e) => section(ENTRY, e.name, readEntry(fd, e)))]);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

/** Writes an input as the reader will see it: exactly these files in `dir` (those in the zip form as zip files). */
export function writeInput(dir: string, files: Record<string, Uint8Array>): void {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (!(f in files)) rmSync(join(dir, f), { recursive: true, force: true });
  for (const [name, bytes] of Object.entries(files)) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (!b.subarray(0, ZIP.length).equals(ZIP)) {
      writeFileSync(join(dir, name), b);
      continue;
    }
    const zip = new ZipWriter(join(dir, name));
    for (const [entry, data] of sections(b.subarray(ZIP.length), ENTRY)) zip.add(entry, data);
    zip.close();
  }
}
