// The `evaluation` namespace: import { evaluation } from 'swav'.
export {
  linearProbe,
  trainLinearHead,
  accuracy,
  cosineAnnealingStep,
  RegLog,
  type LinearHeadState,
  type LinearProbeOptions,
  type LinearProbeResult,
  type EvalCurve,
  type FeatureBatch,
  type HeadOptions,
  type Batches,
} from './linear.js';
export { knnTop1, knnTop1Many, datasetFeatures, type KnnOptions, type FeatureOptions } from './knn.js';
export {
  fineTune,
  multiStepLr,
  labelledSubset,
  subsetOf,
  type FineTuneOptions,
  type FineTuneResult,
  type LabelledBatch,
} from './semisup.js';
export { evalBatches } from '../data/loader.js';
