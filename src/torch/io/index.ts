// torch.load / torch.save: .npy, .safetensors, and PyTorch's own files (.pth, .pth.tar, .pt, ...), by extension.
import { readFileSync } from 'node:fs';
import { parseNpy, formatNpy } from './npy.js';
import { loadTorchFile, saveTorchFile } from './torchfile.js';
import { loadSafetensors, saveSafetensors } from './safetensors.js';
import { Tensor } from '../tensor.js';
import { writeFileAtomic } from './atomic.js';

export type FileKind = 'npy' | 'safetensors' | 'torch';

export function fileKind(path: string): FileKind {
  const p = path.toLowerCase();
  if (p.endsWith('.npy')) return 'npy';
  if (p.endsWith('.safetensors')) return 'safetensors';
  return 'torch';
}

/**
 * Loads a file: a .npy file gives a Tensor; a .safetensors file an object of named tensors; a PyTorch file
 * (zip or legacy format) its pickled data, with tensors, dicts as objects, lists as arrays.
 */
export function load(path: string): any {
  switch (fileKind(path)) {
    case 'npy':
      return parseNpy(readFileSync(path), path);
    case 'safetensors':
      return Object.fromEntries(loadSafetensors(path).tensors);
    case 'torch':
      return loadTorchFile(path);
  }
}

/**
 * Saves to a file chosen by extension: .npy (one Tensor), .safetensors (an object or Map of tensors), else
 * PyTorch's zip format (tensors in objects, Maps, arrays; torch.load(weights_only=True) reads a state dict).
 * Written to a temporary file and renamed, so a crash never leaves half a file under `path`.
 */
export function save(obj: unknown, path: string): void {
  switch (fileKind(path)) {
    case 'npy':
      if (!(obj instanceof Tensor)) throw new TypeError('torch.save: a .npy file holds one Tensor');
      return writeFileAtomic(path, formatNpy(obj));
    case 'safetensors':
      if (
        obj === null ||
        typeof obj !== 'object' ||
        !Object.values(obj instanceof Map ? Object.fromEntries(obj) : obj).every((t) => t instanceof Tensor)
      ) {
        throw new TypeError('torch.save: a .safetensors file holds a flat object (or Map) of name -> Tensor');
      }
      return saveSafetensors(obj as Record<string, Tensor>, path);
    case 'torch':
      return saveTorchFile(obj, path);
  }
}
