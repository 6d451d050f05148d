// The swav package: import { torch, nn, optim, models, hub, swav, deepclusterv2, selav2, evaluation, dist } from 'swav'.
export * as torch from './torch/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as models from './models/index.js';
export * as hub from './hub/index.js';
export * as swav from './methods/swav.js';
export * as deepclusterv2 from './methods/deepclusterv2.js';
export * as selav2 from './methods/selav2.js';
export * as evaluation from './eval/index.js';
export * as dist from './dist/index.js';
