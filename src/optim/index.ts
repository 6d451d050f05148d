// The `optim` namespace: import { optim } from 'swav'.
export { SGD, type SGDOptions, type ParamGroup } from './sgd.js';
export { LARC, type LARCOptions } from './larc.js';
export { cosineSchedule, type CosineScheduleOptions } from './schedule.js';
