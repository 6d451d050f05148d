// Finds and loads the addon file, nothing more: worker threads load it this way, leaving libtorch's settings
// (made in native.ts) to the main thread.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Native } from './native.js';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('swav: cannot find the package root');
    dir = up;
  }
  return dir;
}

export const root = packageRoot();

export function loadAddon(): Native {
  const file = process.env.SWAV_NATIVE || join(root, 'build', 'Release', 'swav_native.node');
  if (!existsSync(file)) {
    throw new Error(`swav: the native addon is not built (${file} is missing). Run \`npm run setup\` in ${root}.`);
  }
  return createRequire(import.meta.url)(file) as Native;
}
