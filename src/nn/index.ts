// The `nn` namespace: import { nn } from 'swav'.
export { Module, StateDictError, type StateDict, type LoadResult } from './module.js';
export * from './layers.js';
export * as init from './init.js';
export * as functional from '../torch/functional.js';
