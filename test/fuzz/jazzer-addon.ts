// Jazzer.js's native addon (libFuzzer in a Node-API module) on the machines this project runs on. @jazzer.js/fuzzer
// 4.0.0 ships one prebuilt binary per platform and never builds or downloads one; its linux-x64 binary was linked
// against glibc 2.38 and GCC 13's libstdc++, so that on glibc 2.36 (Debian 12) loading it fails:
//
//   Error: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found
//     (required by .../node_modules/@jazzer.js/fuzzer/prebuilds/fuzzer-linux-x64.node)
//   (and, with that one out of the way, libstdc++.so.6: version `GLIBCXX_3.4.32' not found)
//
// It needs only three symbols of those versions: __isoc23_strtol and __isoc23_strtoul (C23's strtol and strtoul, which
// only add "0b" prefixes, for libFuzzer's flag parsing) and std::ios_base_library_init (a symbol GCC 13's <iostream>
// references without calling it: no relocation names it). So a copy of the binary is patched, nothing else changed:
// the two __isoc23_ names point at their own tails ("strtol", "strtoul", already in the string table) with glibc's
// base version (GLIBC_2.2.5), and the two versions are marked weak (VER_FLG_WEAK), which the dynamic loader does not
// insist on. The copy lives under test/.cache/jazzer/; a module given to node with --import (this one, with
// SWAV_JAZZER_ADDON naming the copy) makes Jazzer's require of the prebuilt binary load the copy instead.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const PREBUILT = `fuzzer-${process.platform}-${process.arch}.node`;

/** How a Jazzer.js child process gets a loadable addon: node's extra arguments and environment. */
export interface AddonSetup {
  execArgv: string[];
  env: Record<string, string>;
  note?: string;
}

/** The prebuilt binary's path (in @jazzer.js/fuzzer/prebuilds/). */
export function prebuiltPath(): string {
  return join(dirname(require.resolve('@jazzer.js/fuzzer/package.json')), 'prebuilds', PREBUILT);
}

/** The error loading a binary gives in a fresh node, or '' when it loads. */
function loadError(path: string): string {
  const r = spawnSync(process.execPath, ['-e', `process.dlopen({ exports: {} }, ${JSON.stringify(path)})`], { encoding: 'utf8' });
  return r.status === 0 ? '' : (r.stderr.split('\n').find((l) => /Error/.test(l)) ?? r.stderr).trim();
}

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  info: number;
}

/** The binary with its glibc 2.38 and GLIBCXX 3.4.32 needs taken out as described above; throws if it is not as expected. */
export function patchAddon(input: Uint8Array): Buffer {
  const b = Buffer.from(input);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const sections: Section[] = Array.from({ length: b.readUInt16LE(0x3c) }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      type: b.readUInt32LE(o + 4),
      offset: Number(b.readBigUInt64LE(o + 0x18)),
      size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28),
      info: b.readUInt32LE(o + 0x2c),
    };
  });
  const find = (type: number) =>
    sections.find((s) => s.type === type) ??
    (() => {
      throw new Error(`no section of type 0x${type.toString(16)}`);
    })();
  const dynsym = find(11); // SHT_DYNSYM
  const versym = find(0x6fffffff); // SHT_GNU_versym
  const verneed = find(0x6ffffffe); // SHT_GNU_verneed
  const strtab = sections[dynsym.link].offset;
  const str = (off: number) => b.toString('latin1', strtab + off, b.indexOf(0, strtab + off));
  // the versions needed, each file's Vernaux entries: hash, flags, index, name, next
  const needs: { at: number; file: string; name: string; index: number }[] = [];
  for (let o = verneed.offset, n = 0; n < verneed.info; n++) {
    const file = str(b.readUInt32LE(o + 4));
    for (let a = o + b.readUInt32LE(o + 8), k = 0; k < b.readUInt16LE(o + 2); k++, a += b.readUInt32LE(a + 12)) {
      needs.push({ at: a, file, name: str(b.readUInt32LE(a + 8)), index: b.readUInt16LE(a + 6) });
    }
    o += b.readUInt32LE(o + 12);
  }
  const base = needs.find((x) => x.file === 'libc.so.6' && x.name === 'GLIBC_2.2.5');
  if (!base) throw new Error('no need of GLIBC_2.2.5');
  const renamed: string[] = [];
  for (let i = 0; i < dynsym.size / 24; i++) {
    const o = dynsym.offset + 24 * i;
    const name = str(b.readUInt32LE(o));
    if (!name.startsWith('__isoc23_') || b.readUInt16LE(o + 6) !== 0) continue; // undefined symbols only
    b.writeUInt32LE(b.readUInt32LE(o) + '__isoc23_'.length, o);
    b.writeUInt16LE(base.index, versym.offset + 2 * i);
    renamed.push(name);
  }
  if (renamed.sort().join() !== '__isoc23_strtol,__isoc23_strtoul')
    throw new Error(`unexpected C23 symbols: ${renamed.join(', ') || 'none'}`);
  let weak = 0;
  for (const x of needs) {
    if ((x.file === 'libc.so.6' && x.name === 'GLIBC_2.38') || (x.file === 'libstdc++.so.6' && x.name === 'GLIBCXX_3.4.32')) {
      b.writeUInt16LE(b.readUInt16LE(x.at + 4) | 2, x.at + 4); // VER_FLG_WEAK
      weak++;
    }
  }
  if (!weak) throw new Error('needs neither GLIBC_2.38 nor GLIBCXX_3.4.32');
  return b;
}

let setup: AddonSetup | undefined;

/**
 * How to start Jazzer.js here: nothing extra where its prebuilt binary loads; the patched copy (made once) where it
 * fails only for want of glibc 2.38 or GLIBCXX 3.4.32; otherwise an Error with the loader's message.
 */
export function jazzerAddon(): AddonSetup {
  if (setup) return setup;
  const prebuilt = prebuiltPath();
  if (!existsSync(prebuilt)) throw new Error(`Jazzer.js has no prebuilt binary for ${process.platform}-${process.arch} (${prebuilt})`);
  const error = loadError(prebuilt);
  if (!error) return (setup = { execArgv: [], env: {} });
  if (process.platform !== 'linux' || process.arch !== 'x64' || !/version `(GLIBC_2\.38|GLIBCXX_3\.4\.32)' not found/.test(error)) {
    throw new Error(`Jazzer.js's native addon does not load here: ${error}`);
  }
  const original = readFileSync(prebuilt);
  const hash = createHash('sha256').update(original).digest('hex').slice(0, 12);
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const copy = join(root, 'test', '.cache', 'jazzer', `fuzzer-linux-x64-${hash}-glibc2.36.node`);
  if (!existsSync(copy)) {
    mkdirSync(dirname(copy), { recursive: true });
    writeFileSync(`${copy}.${process.pid}`, patchAddon(original));
    renameSync(`${copy}.${process.pid}`, copy); // whole, for test files running at the same time
  }
  const still = loadError(copy);
  if (still) throw new Error(`Jazzer.js's native addon does not load here: ${error}; nor does its patched copy ${copy}: ${still}`);
  return (setup = {
    execArgv: ['--import', import.meta.url],
    env: { SWAV_JAZZER_ADDON: copy },
    note: `Jazzer.js's prebuilt addon needs glibc 2.38: using its patched copy ${copy}`,
  });
}

// Given to node with --import: Jazzer's require of its prebuilt binary loads the patched copy.
const copy = process.env.SWAV_JAZZER_ADDON;
if (copy) {
  const extensions = (Module as unknown as { _extensions: Record<string, (m: unknown, f: string) => void> })._extensions;
  const load = extensions['.node'];
  extensions['.node'] = (m, f) => load(m, f.endsWith(`/prebuilds/${PREBUILT}`) ? copy : f);
}
