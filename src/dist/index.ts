// The `dist` namespace: import { dist } from 'swav'.
export { singleProcess, type ProcessGroup, type SyncBatchNormGroup } from './group.js';
export { initProcessGroup, availableBackends, C10dGroup, Work, type InitOptions, type ReduceOp } from './c10d.js';
export { DistributedDataParallel, type DdpOptions } from './ddp.js';
export { syncBatchNorm, convertSyncBatchNorm } from './sync_batch_norm.js';
