// The `models` namespace: import { models } from 'swav'.
export * from './resnet.js';
