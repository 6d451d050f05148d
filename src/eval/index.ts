// The `evaluation` namespace: import { evaluation } from 'swav'.
export { linearProbe, accuracy, cosineAnnealingStep, type LinearProbeOptions, type LinearProbeResult } from './linear.js';
export { knnTop1, datasetFeatures, type KnnOptions, type FeatureOptions } from './knn.js';
