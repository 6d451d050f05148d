// torch.load / torch.save, by file extension.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseNpy, formatNpy } from './npy.js';
import type { Tensor } from '../tensor.js';
import { writeFileAtomic } from './atomic.js';

/** Loads a tensor from a .npy file. */
export function load(path: string): Tensor {
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') return parseNpy(readFileSync(path), path);
  throw new Error(`torch.load: unsupported file type '${ext || path}' (supported: .npy)`);
}

/** Saves a tensor to a .npy file (written to a temporary file, then renamed). */
export function save(t: Tensor, path: string): void {
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') return writeFileAtomic(path, formatNpy(t));
  throw new Error(`torch.save: unsupported file type '${ext || path}' (supported: .npy)`);
}
