// The `torch` namespace: import { torch } from 'swav'.
export { Tensor, type IndexItem, type Slice } from './tensor.js';
export * from './dtype.js';
export * from './creation.js';
export * from './functional.js';
export * from './autograd.js';
export * from './runtime.js';
export { tidy, keep } from './scope.js';
export { ops, schema } from './ops.js';
export { load, save } from './io/index.js';
export { loadTorchFile, saveTorchFile, CheckpointError } from './io/torchfile.js';
export { loadSafetensors, saveSafetensors, SafetensorsError } from './io/safetensors.js';
export { UnpicklingError } from './io/pickle.js';
